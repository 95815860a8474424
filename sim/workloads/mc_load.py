"""Writes random keys into memcached (text protocol over a unix socket) at a steady rate, with
reads of recent keys: a cache that fills to its -m and then evicts. With KEYS, the keys wrap
around after KEYS of them: a working set of KEYS values, rewritten, that levels off below -m.

  python3 mc_load.py SOCKET KIB_PER_S [KEYS]
"""
import random
import socket
import sys
import time

sock_path, kib_per_s = sys.argv[1], float(sys.argv[2])
keys = int(sys.argv[3]) if len(sys.argv) > 3 else 0
s = socket.socket(socket.AF_UNIX)
s.connect(sock_path)
f = s.makefile("rb")
value = b"x" * 2048
per_tick = max(1, int(kib_per_s / 2 / 10))
key = 0
while True:
    for _ in range(per_tick):
        s.sendall(b"set k%d 0 0 %d\r\n%s\r\n" % (key % keys if keys else key, len(value), value))
        f.readline()
        key += 1
        k = random.randrange(max(0, key - 50000), key)
        k = k % keys if keys else k
        s.sendall(b"get k%d\r\n" % k)
        while f.readline() not in (b"END\r\n", b""):
            pass
    time.sleep(0.1)
