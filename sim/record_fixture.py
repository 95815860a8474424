#!/usr/bin/env python3
"""Records a real-kernel trace fixture for the predictor (tests/fixtures/predict/*.jsonl).

Stand-in until the agent records traces itself with agent/predict/trace.h's TraceWriter: runs one
command in a fresh memory cgroup (cgroup v1 memory controller, as on the development machines,
plus the matching cgroup2 directory for memory.pressure), samples the cgroup's files every
--interval_s, and writes the trace format of agent/predict/trace.h. The OOM label comes from the
kernel: the first sample whose memory.oom_control oom_kill count increased; the label is set 1 ms
after the previous sample, so measured lead times are lower bounds.

v1 mapping: anon = total_rss, file = total_cache, shmem = total_shmem, active/inactive file from
stat, swap = total_swap, limit_hits = memory.failcnt, oom_kills = oom_control oom_kill,
kernel_unreclaimable = 0 (v1 memory.stat has no slab split), reclaim_stall_ns = 0 (BPF only).

Usage (root): record_fixture.py --class kernel_leak --limit_mib 256 --out X.jsonl -- CMD...
Everything it creates (process group, cgroups in both hierarchies) is removed on exit.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time


def own_memory_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                return path
    raise SystemExit("record_fixture: no v1 memory controller in /proc/self/cgroup")


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, v = line.split()
            out[k] = int(v)
    return out


def read_psi(path):
    try:
        with open(path) as f:
            vals = {}
            for line in f:
                kind, *fields = line.split()
                vals[kind] = float(dict(x.split("=") for x in fields)["avg10"])
            return vals.get("some", -1.0), vals.get("full", -1.0)
    except OSError:
        return -1.0, -1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--class", dest="cls", required=True)
    ap.add_argument("--limit_mib", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval_s", type=float, default=1.0)
    ap.add_argument("--max_s", type=float, default=600)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        raise SystemExit("record_fixture: no command")

    name = "tapio-predict-rec-%d" % os.getpid()
    v1 = "/sys/fs/cgroup/memory" + own_memory_cgroup().rstrip("/") + "/" + name
    v2 = "/sys/fs/cgroup/unified/" + name
    os.mkdir(v1)
    made_v2 = False
    proc = None
    try:
        with open(v1 + "/memory.limit_in_bytes", "w") as f:
            f.write(str(a.limit_mib << 20))
        try:
            os.mkdir(v2)
            made_v2 = True
        except OSError:
            pass

        def enter():
            os.setpgid(0, 0)
            with open(v1 + "/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
            if made_v2:
                with open(v2 + "/cgroup.procs", "w") as f:
                    f.write(str(os.getpid()))

        header = {"tapio_trace": 1, "class": a.cls, "source": "kernel",
                  "name": " ".join(cmd) + " (limit %d MiB, v1)" % a.limit_mib, "seed": 0,
                  "oom_time_ms": None}
        samples = []
        start = time.monotonic()
        proc = subprocess.Popen(cmd, preexec_fn=enter, stdout=subprocess.DEVNULL)
        base_kills = read_kv(v1 + "/memory.oom_control").get("oom_kill", 0)
        prev_ms = None
        while True:
            t_ms = int((time.monotonic() - start) * 1000)
            stat = read_kv(v1 + "/memory.stat")
            kills = read_kv(v1 + "/memory.oom_control").get("oom_kill", 0) - base_kills
            some, full = read_psi(v2 + "/memory.pressure") if made_v2 else (-1.0, -1.0)
            if kills > 0 and header["oom_time_ms"] is None:
                header["oom_time_ms"] = (prev_ms if prev_ms is not None else t_ms) + 1
            samples.append({
                "time_ms": t_ms,
                "usage_bytes": read_int(v1 + "/memory.usage_in_bytes"),
                "limit_bytes": read_int(v1 + "/memory.limit_in_bytes"),
                "anon_bytes": stat.get("total_rss", 0),
                "file_bytes": stat.get("total_cache", 0),
                "active_file_bytes": stat.get("total_active_file", 0),
                "inactive_file_bytes": stat.get("total_inactive_file", 0),
                "shmem_bytes": stat.get("total_shmem", 0),
                "kernel_unreclaimable_bytes": 0,
                "swap_bytes": stat.get("total_swap", 0),
                "limit_hits": read_int(v1 + "/memory.failcnt"),
                "oom_kills": kills,
                "psi_some_avg10": some,
                "psi_full_avg10": full,
                "reclaim_stall_ns": 0,
            })
            prev_ms = t_ms
            if kills > 0 or proc.poll() is not None or t_ms > a.max_s * 1000:
                break
            time.sleep(max(0.0, a.interval_s - (time.monotonic() - start - t_ms / 1000)))
        with open(a.out, "w") as f:
            f.write(json.dumps(header) + "\n")
            for s in samples:
                f.write(json.dumps(s) + "\n")
        print("record_fixture: %d samples, oom_time_ms=%s -> %s" %
              (len(samples), header["oom_time_ms"], a.out), file=sys.stderr)
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        for d in (v1, v2 if made_v2 else None):
            if d is None:
                continue
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)


if __name__ == "__main__":
    main()
