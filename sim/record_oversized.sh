#!/usr/bin/env bash
# Records real-kernel traces of runtimes whose heap caps let them fill their container: JVMs,
# Node.js and memcached with caps past their limit, about half of them with a working set that
# fits and half with one that does not; the kernel's OOM kills label them (docs/prediction.md,
# "Heaps allowed past the limit"). Set 1 was written, and its workloads chosen, after
# oversized_early_min_history_s was set on tests/fixtures/predict/steps_caps/ and before any model
# was judged on it; oversized_deadline_grace_s was then set on set 1 and steps_caps/. Set 2 was
# written after that and before any model was judged on it.
#
#   sim/record_oversized.sh OUT_DIR MAX_MINUTES [BUILD_DIR] [SET (1|2, default 1)]
#
# Writes OUT_DIR/kernel_<name>.jsonl per workload, OUT_DIR/events.json and OUT_DIR/agent.log;
# stops after MAX_MINUTES (the ones that live run until then). Labels come from the kernel's OOM
# kills (sim/record_common.sh): check them before calling a trace a positive or a negative.
# Needs root, openjdk (javac), node and memcached. Cleans up every process, cgroup and file it made.
set -euo pipefail
out=${1:?OUT_DIR}
minutes=${2:?MAX_MINUTES}
build=${3:-build}
workload_set=${4:-1}
[[ $workload_set == 1 || $workload_set == 2 ]] || { echo "record_oversized: SET must be 1 or 2, not '$workload_set'" >&2; exit 2; }
me=record_oversized
here=$(cd "$(dirname "$0")" && pwd)
needs=(javac java node memcached python3)
# shellcheck source=sim/record_common.sh
source "$here/record_common.sh"
record_start

compile_churn

if [[ $workload_set == 1 ]]; then
  # Working sets that fit: the caps allow the limit, the workloads do not need it.
  jvm jvm_g1_fits 256 90 20 -Xmx512m -XX:+UseG1GC
  jvm jvm_parallel_fits 384 150 30 -Xmx1g -XX:+UseParallelGC
  jvm jvm_serial_fits 256 100 15 -Xmx768m -XX:+UseSerialGC
  jvm jvm_percentage_fits 320 120 20 -XX:MaxRAMPercentage=90 -XX:+UseG1GC
  cgroup node_fits 256
  run node_fits node --max-old-space-size=1024 "$here/workloads/gc_workload.js" 70 20 0
  memcached_filled memcached_fits 256 1024 1536 60000
  # Working sets past the limit: they fill it and are killed.
  jvm jvm_g1_past 320 400 30 -Xmx1g -XX:+UseG1GC
  jvm jvm_parallel_past 256 300 15 -XX:MaxRAMPercentage=100 -XX:+UseParallelGC
  cgroup node_past 256
  run node_past node --max-old-space-size=1024 "$here/workloads/gc_workload.js" 300 25 0
  memcached_filled memcached_past 192 512 2048
else
  # Working sets that fit.
  jvm jvm_g1_fits_2 320 110 25 -Xmx640m -XX:+UseG1GC
  jvm jvm_parallel_fits_2 256 80 15 -Xmx512m -XX:+UseParallelGC
  jvm jvm_serial_fits_2 384 150 20 -Xmx1g -XX:+UseSerialGC
  jvm jvm_percentage_fits_2 256 100 20 -XX:MaxRAMPercentage=85 -XX:+UseG1GC
  cgroup node_fits_2 320
  run node_fits_2 node --max-old-space-size=2048 "$here/workloads/gc_workload.js" 120 30 0
  memcached_filled memcached_fits_2 320 2048 2048 90000
  # Working sets past the limit, or a slow leak (node_slow_past keeps 256 KiB/s).
  jvm jvm_g1_past_2 384 500 40 -Xmx1g -XX:+UseG1GC
  cgroup node_slow_past 256
  run node_slow_past node --max-old-space-size=1024 "$here/workloads/gc_workload.js" 60 20 256
  memcached_filled memcached_past_2 256 1024 3072
fi

echo "$me: ${#names[@]} workloads under $base for $minutes min, traces in $tmp/traces"
deadline=$((SECONDS + minutes * 60))
while ((SECONDS < deadline)); do sleep 5; done
record_export
