"""Memory shapes of ordinary services, for recording real-kernel negative traces.

  python3 service_mem.py lru CAP_MIB MIB_PER_S     an LRU cache: inserts 4 KiB values at a
                                                   steady rate, evicts the oldest past CAP_MIB
  python3 service_mem.py hold MIB JITTER_MIB       a resident set of MIB +- JITTER_MIB that
                                                   wanders by 1 MiB steps each second
  python3 service_mem.py batch MIB FILL_S HOLD_S PERIOD_S
                                                   a periodic job: builds MIB over FILL_S,
                                                   keeps it HOLD_S, frees it, waits the period
Every page is touched, so RSS follows what is held.
"""
import collections
import random
import sys
import time

MIB = 1 << 20


def chunk(n):
    b = bytearray(n)
    for i in range(0, n, 4096):
        b[i] = 1
    return b


def lru(cap_mib, mib_per_s):
    cache = collections.OrderedDict()
    per_tick = max(1, int(mib_per_s * MIB / 4096 / 10))
    key = 0
    while True:
        for _ in range(per_tick):
            cache[key] = chunk(4096)
            key += 1
            if len(cache) * 4096 > cap_mib * MIB:
                cache.popitem(last=False)
        for _ in range(per_tick // 4):  # reads keep part of the set hot
            k = random.randrange(max(0, key - len(cache)), key)
            if k in cache:
                cache.move_to_end(k)
        time.sleep(0.1)


def hold(mib, jitter_mib):
    rng = random.Random(7)
    held = [chunk(MIB) for _ in range(mib)]
    target = mib
    while True:
        target = min(mib + jitter_mib, max(mib - jitter_mib, target + rng.choice((-1, 0, 1))))
        while len(held) < target:
            held.append(chunk(MIB))
        while len(held) > target:
            held.pop()
        held[rng.randrange(len(held))] = chunk(MIB)  # churn one piece
        time.sleep(1.0)


def batch(mib, fill_s, hold_s, period_s):
    while True:
        start = time.monotonic()
        data = []
        for i in range(mib):
            data.append(chunk(MIB))
            time.sleep(fill_s / mib)
        time.sleep(hold_s)
        del data
        time.sleep(max(0.0, period_s - (time.monotonic() - start)))


if __name__ == "__main__":
    mode, args = sys.argv[1], [float(a) for a in sys.argv[2:]]
    if mode == "lru":
        lru(args[0], args[1])
    elif mode == "hold":
        hold(int(args[0]), int(args[1]))
    elif mode == "batch":
        batch(int(args[0]), args[1], args[2], args[3])
    else:
        sys.exit("usage: see the module docstring")
