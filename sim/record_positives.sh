#!/usr/bin/env bash
# Records real-kernel traces of services that the kernel OOM-kills: the positives of
# tests/fixtures/predict. Each one is an ordinary service whose own cap is set above its
# container's limit (or that has none), which is how these kills happen in practice. One agent
# (`--record_traces_dir`) watches every workload at once, each in its own memory cgroup below ours;
# the agent labels each trace with the kernel's OOM kill (sim/record_common.sh).
#
#   sim/record_positives.sh OUT_DIR MAX_MINUTES [BUILD_DIR]
#
# Writes OUT_DIR/kernel_<name>.jsonl per workload (header class set), OUT_DIR/events.json and
# OUT_DIR/agent.log; stops once every workload is gone or after MAX_MINUTES. A workload that was
# not OOM-killed has no label: check before calling it a positive. Needs root, redis-server,
# memcached, openjdk (javac), node, python3. Cleans up every process, cgroup and file it made.
set -euo pipefail
out=${1:?OUT_DIR}
minutes=${2:?MAX_MINUTES}
build=${3:-build}
me=record_positives
here=$(cd "$(dirname "$0")" && pwd)
needs=(redis-server redis-benchmark memcached javac java node)
# shellcheck source=sim/record_common.sh
source "$here/record_common.sh"
record_start

compile_churn

# Redis with no maxmemory, filled in bursts of SETs.
cgroup redis_unbounded 256
run redis_unbounded redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 777 \
  --save "" --appendonly no
load bash -c "sleep 2; while :; do redis-benchmark -s $tmp/redis.sock -t set -r 10000000 -d 512 \
  -n 5000 -c 2 -q >/dev/null; sleep 2; done"

# memcached with -m 1024 in 256 MiB, filled at 1 MiB/s.
cgroup memcached_oversized 256
install -d -o memcache "$tmp/mc"
run memcached_oversized memcached -u memcache -m 1024 -s "$tmp/mc/mc.sock" -a 0666
load bash -c "sleep 2; exec python3 $here/workloads/mc_load.py $tmp/mc/mc.sock 1024"

# An LRU cache whose cap (400 MiB) is above its limit, filling at 1.5 MiB/s.
cgroup py_lru_oversized 192
run py_lru_oversized python3 "$here/workloads/service_mem.py" lru 400 1.5

# A JVM whose -Xmx (512m) is above its limit, its live set growing to 300 MiB.
cgroup jvm_heap_oversized 256
run jvm_heap_oversized java -Xmx512m -XX:+UseG1GC -cp "$tmp/java" Churn 300 20

# Node.js keeping 512 KiB/s under 20 MiB/s of garbage, old space allowed to 4 GiB.
cgroup node_slow_leak 256
run node_slow_leak node --max-old-space-size=4096 "$here/workloads/gc_workload.js" 40 20 512

# A log buffer in /dev/shm that is never rotated: 1 MiB every 2 s.
cgroup tmpfs_unrotated 192
run tmpfs_unrotated bash -c "i=0; while :; do dd if=/dev/zero of=$shm/f\$i bs=1M count=1 status=none;
  i=\$((i + 1)); sleep 2; done"

# A batch job whose working set (300 MiB, built over 60 s) does not fit its limit.
cgroup py_batch_oversized 256
run py_batch_oversized python3 "$here/workloads/service_mem.py" batch 300 60 30 120

echo "$me: ${#names[@]} workloads under $base for at most $minutes min, traces in $tmp/traces"
deadline=$((SECONDS + minutes * 60))
while ((SECONDS < deadline)); do
  alive=0
  for n in "${names[@]}"; do
    (($(procs "$n") > 0)) && alive=$((alive + 1))
  done
  ((alive > 0)) || break
  sleep 5
done
# A few seconds more, so that the agent has read each cgroup after its kill.
sleep 5
record_export
