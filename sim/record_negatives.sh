#!/usr/bin/env bash
# Records real-kernel traces of services that live near their memory limit and are never
# OOM-killed: the negatives of tests/fixtures/predict (false alarms per container-hour need
# hours of them). One agent (`--record_traces_dir`) watches every workload at once, each in its
# own memory cgroup below ours (v1 memory and the same path in cgroup2, as runtimes do here).
#
#   sim/record_negatives.sh OUT_DIR MINUTES [BUILD_DIR]
#
# Writes OUT_DIR/kernel_<name>.jsonl per workload (header class set), OUT_DIR/events.json
# (the agent's events at warning and above: any prediction raised while recording) and
# OUT_DIR/agent.log. A workload that was OOM-killed keeps its label: check before calling it a
# negative. Needs root, redis-server, memcached, postgresql, openjdk (javac), node, python3.
# Cleans up every process, cgroup and file it made, however it ends.
set -euo pipefail
out=${1:?OUT_DIR}
minutes=${2:?MINUTES}
build=${3:-build}
me=record_negatives
here=$(cd "$(dirname "$0")" && pwd)
needs=(redis-server redis-benchmark memcached javac java node runuser base64 sort)
pg_bins=(/usr/lib/postgresql/*/bin)  # sorted: the newest major version last
pg_bin=${pg_bins[-1]}
[[ -x $pg_bin/postgres ]] || { echo "$me: postgresql not installed" >&2; exit 1; }
# shellcheck source=sim/record_common.sh
source "$here/record_common.sh"
record_start

# Build what the workloads need before any cgroup exists (compiles are not part of a trace).
mkdir -p "$shm" "$tmp/sort"
compile_churn
{ base64 -w 100 /dev/urandom || true; } | head -c $((120 << 20)) >"$tmp/lines.txt"
dd if=/dev/urandom of="$tmp/big" bs=1M count=600 status=none
sync
echo 1 >/proc/sys/vm/drop_caches

# PostgreSQL: shared_buffers (shmem) plus a 300 MB database read through the page cache, driven
# by a rate-limited pgbench from outside.
cgroup postgres 320
install -d -o postgres -g postgres "$tmp/pg" "$tmp/pgsock"
runuser -u postgres -- "$pg_bin/initdb" -D "$tmp/pg/data" -A trust >/dev/null
run postgres runuser -u postgres -- "$pg_bin/postgres" -D "$tmp/pg/data" -c shared_buffers=160MB \
  -c listen_addresses= -c unix_socket_directories="$tmp/pgsock" -c port=5433 -c fsync=off
for _ in $(seq 100); do runuser -u postgres -- "$pg_bin/pg_isready" -q -h "$tmp/pgsock" -p 5433 && break; sleep 0.2; done
runuser -u postgres -- "$pg_bin/pgbench" -q -i -s 20 -h "$tmp/pgsock" -p 5433 postgres >/dev/null 2>&1
load runuser -u postgres -- "$pg_bin/pgbench" -n -c 2 -R 50 -T $((minutes * 60 + 600)) \
  -h "$tmp/pgsock" -p 5433 postgres

# Redis as an LRU cache at maxmemory, filled in bursts of SETs.
cgroup redis 256
run redis redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 777 --maxmemory 160mb \
  --maxmemory-policy allkeys-lru --save "" --appendonly no
load bash -c "sleep 2; while :; do redis-benchmark -s $tmp/redis.sock -t set -r 1000000 -d 512 \
  -n 20000 -c 2 -q >/dev/null; sleep 3; done"

# memcached at its -m, filled at 2 MiB/s.
cgroup memcached 256
install -d -o memcache "$tmp/mc"
run memcached memcached -u memcache -m 160 -s "$tmp/mc/mc.sock" -a 0666
load bash -c "sleep 2; exec python3 $here/workloads/mc_load.py $tmp/mc/mc.sock 2048"

# JVMs (G1) churning a live set: one sized to its cgroup, one with headroom.
cgroup jvm_churn_small 256
run jvm_churn_small java -Xmx160m -XX:+UseG1GC -cp "$tmp/java" Churn 60 30
cgroup jvm_churn_large 384
run jvm_churn_large java -Xmx256m -XX:+UseG1GC -cp "$tmp/java" Churn 140 20

# Node.js (V8): default heap sizing, and a capped old space.
cgroup node_churn 256
run node_churn node "$here/workloads/gc_workload.js" 60 30 0
cgroup node_churn_capped 320
run node_churn_capped node --max-old-space-size=200 "$here/workloads/gc_workload.js" 120 15 0

# Python services: an LRU cache, a resident set wandering near the limit, a periodic batch job.
cgroup py_lru 192
run py_lru python3 "$here/workloads/service_mem.py" lru 120 2
cgroup py_hold_near_limit 256
run py_hold_near_limit python3 "$here/workloads/service_mem.py" hold 205 8
cgroup py_batch 256
run py_batch python3 "$here/workloads/service_mem.py" batch 120 6 20 90

# Page cache at the limit: a 600 MiB file read in a loop, part of it rewritten every 10 minutes.
cgroup page_cache_reader 128
run page_cache_reader bash -c "i=0; while :; do cat $tmp/big >/dev/null; sleep 5; i=\$((i + 1));
  if ((i % 100 == 0)); then dd if=/dev/urandom of=$tmp/big bs=1M count=100 conv=notrunc status=none; fi; done"

# tmpfs as a ring of 100 one-MiB files (a log buffer in /dev/shm): steady shmem.
cgroup tmpfs_ring 192
run tmpfs_ring bash -c "i=0; while :; do dd if=/dev/zero of=$shm/f\$i bs=1M count=1 status=none;
  rm -f $shm/f\$((i - 100)); i=\$((i + 1)); sleep 1; done"

# sort(1) with a 64 MiB buffer over 120 MiB of lines, every two minutes: anon and temp files.
cgroup sort_batch 256
run sort_batch bash -c "while :; do sort -S 64M --parallel=1 -T $tmp/sort $tmp/lines.txt >/dev/null; sleep 120; done"

echo "record_negatives: ${#names[@]} workloads under $base for $minutes min, traces in $tmp/traces"
sleep $((minutes * 60))

record_export
