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
here=$(cd "$(dirname "$0")" && pwd)
agent=$build/agent/tapio-agent
[[ $(id -u) -eq 0 ]] || { echo "record_negatives: needs root" >&2; exit 1; }
[[ -x $agent ]] || { echo "record_negatives: build first ($agent)" >&2; exit 1; }
for tool in redis-server redis-benchmark memcached javac java node runuser base64 sort; do
  command -v "$tool" >/dev/null || { echo "record_negatives: $tool not installed" >&2; exit 1; }
done
pg_bins=(/usr/lib/postgresql/*/bin)  # sorted: the newest major version last
pg_bin=${pg_bins[-1]}
[[ -x $pg_bin/postgres ]] || { echo "record_negatives: postgresql not installed" >&2; exit 1; }
mkdir -p "$out"

self_mem=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
if [[ -n $self_mem ]]; then
  mem_root=/sys/fs/cgroup/memory v2_root=/sys/fs/cgroup/unified limit_file=memory.limit_in_bytes
else
  self_mem=$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
  mem_root=/sys/fs/cgroup v2_root='' limit_file=memory.max
fi
base=${self_mem%/}/tapio-rec-$$
tmp=$(mktemp -d /var/tmp/tapio-rec.XXXXXX)
chmod 755 "$tmp"
mkdir "$tmp/traces"
shm=/dev/shm/tapio-rec-$$
names=()
pids=()
agent_pid=
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
  for n in "${names[@]}"; do
    for root in "$mem_root" $v2_root; do
      d=$root$base/$n
      [[ -d $d ]] || continue
      while read -r p; do kill -9 "$p" 2>/dev/null; done <"$d/cgroup.procs"
    done
  done
  sleep 1
  [[ -n $agent_pid ]] && kill -INT "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  for n in "${names[@]}"; do
    for root in "$mem_root" $v2_root; do
      for _ in 1 2 3 4 5; do [[ -d $root$base/$n ]] || break; rmdir "$root$base/$n" && break; sleep 0.5; done
    done
  done
  for root in "$mem_root" $v2_root; do rmdir "$root$base" 2>/dev/null; done
  rm -rf "$tmp" "$shm"
}
trap cleanup EXIT INT TERM

for root in "$mem_root" $v2_root; do mkdir -p "$root$base"; done

# cgroup NAME LIMIT_MIB: makes the workload's cgroup in every hierarchy.
cgroup() {
  names+=("$1")
  for root in "$mem_root" $v2_root; do mkdir -p "$root$base/$1"; done
  echo $(($2 << 20)) >"$mem_root$base/$1/$limit_file"
}
# run NAME CMD...: runs CMD (and everything it starts) in NAME's cgroups, in its own process group.
run() {
  local n=$1
  shift
  local dirs=("$mem_root$base/$n")
  [[ -n $v2_root ]] && dirs+=("$v2_root$base/$n")
  # shellcheck disable=SC2016  # the inner shell expands these, not this one
  setsid bash -c 'k=$1; shift; for ((j = 0; j < k; j++)); do echo $$ >"$1/cgroup.procs"; shift; done
    exec "$@"' _ "${#dirs[@]}" "${dirs[@]}" "$@" </dev/null >>"$tmp/$n.log" 2>&1 &
  pids+=($!)
}
# load CMD: a load generator, outside the workloads' cgroups.
load() {
  setsid "$@" </dev/null >>"$tmp/load.log" 2>&1 &
  pids+=($!)
}

"$agent" --output=json --output_min_severity=warning --summary_interval_s=60 \
  --record_traces_dir="$tmp/traces" --grpc_address= --metrics_address= \
  >"$out/events.json" 2>"$out/agent.log" &
agent_pid=$!
for _ in $(seq 100); do grep -q 'running on node' "$out/agent.log" && break; sleep 0.1; done
grep -q 'running on node' "$out/agent.log" || { echo "record_negatives: agent did not start" >&2; exit 1; }

# Build what the workloads need before any cgroup exists (compiles are not part of a trace).
mkdir -p "$tmp/java" "$shm" "$tmp/sort"
javac -d "$tmp/java" "$here/workloads/Churn.java"
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

# Stop the workloads first, then the agent, so every trace ends with its workload.
for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
sleep 3
for n in "${names[@]}"; do
  id=$(stat -c %i "${v2_root:-$mem_root}$base/$n")
  [[ -f $tmp/traces/$id.jsonl ]] || { echo "record_negatives: no trace for $n" >&2; continue; }
  python3 - "$tmp/traces/$id.jsonl" "$out/kernel_$n.jsonl" "kernel_$n" <<'PY'
import json, sys
src, dst, cls = sys.argv[1:]
with open(src) as f:
    lines = f.readlines()
header = json.loads(lines[0])
header["class"] = cls
with open(dst, "w") as f:
    f.write(json.dumps(header, separators=(",", ":")) + "\n")
    f.writelines(lines[1:])
print(f"{dst}: {len(lines) - 1} samples, oom_time_ms={header.get('oom_time_ms')}")
PY
done
cp "$tmp"/*.log "$out/" 2>/dev/null || true
