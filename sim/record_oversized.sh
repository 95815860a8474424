#!/usr/bin/env bash
# Records real-kernel traces of runtimes whose heap caps let them fill their container: JVMs,
# Node.js and memcached with caps past their limit, half of them with a working set that fits
# (they level off and live) and half with one that does not (the kernel OOM-kills them). Written,
# and its workloads chosen, after oversized_early_min_history_s was set on
# tests/fixtures/predict/steps_caps/ and before any model was judged on it
# (docs/prediction.md, "Heaps allowed past the limit").
#
#   sim/record_oversized.sh OUT_DIR MAX_MINUTES [BUILD_DIR]
#
# Writes OUT_DIR/kernel_<name>.jsonl per workload, OUT_DIR/events.json and OUT_DIR/agent.log;
# stops after MAX_MINUTES (the ones that live run until then). Labels come from the kernel's OOM
# kills (sim/record_common.sh): check them before calling a trace a positive or a negative.
# Needs root, openjdk (javac), node and memcached. Cleans up every process, cgroup and file it made.
set -euo pipefail
out=${1:?OUT_DIR}
minutes=${2:?MAX_MINUTES}
build=${3:-build}
me=record_oversized
here=$(cd "$(dirname "$0")" && pwd)
needs=(javac java node memcached python3)
# shellcheck source=sim/record_common.sh
source "$here/record_common.sh"
record_start

compile_churn

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

echo "$me: ${#names[@]} workloads under $base for $minutes min, traces in $tmp/traces"
deadline=$((SECONDS + minutes * 60))
while ((SECONDS < deadline)); do sleep 5; done
record_export
