#!/usr/bin/env bash
# Records real-kernel traces of runtimes whose heap caps the agent reads (docs/prediction.md,
# "Runtime heap caps"), both sides of the limit: JVMs, memcached and Node.js capped below their
# container's limit, which level off and live, and ones allowed past it, which the kernel
# OOM-kills. Written, and its workloads chosen, before any model uses the cap, to judge such a
# model on traces it was not written on.
#
#   sim/record_caps.sh OUT_DIR MAX_MINUTES [BUILD_DIR]
#
# Writes OUT_DIR/kernel_<name>.jsonl per workload, OUT_DIR/events.json and OUT_DIR/agent.log;
# stops after MAX_MINUTES (the capped ones run until then). Labels come from the kernel's OOM
# kills (sim/record_common.sh): check them before calling a trace a positive or a negative.
# Needs root, openjdk (javac), node and memcached. Cleans up every process, cgroup and file it made.
set -euo pipefail
out=${1:?OUT_DIR}
minutes=${2:?MAX_MINUTES}
build=${3:-build}
me=record_caps
here=$(cd "$(dirname "$0")" && pwd)
needs=(javac java node memcached python3)
# shellcheck source=sim/record_common.sh
source "$here/record_common.sh"
record_start

compile_churn

# Capped below the limit: they level off and live.
jvm jvm_default_384 384 90 20 -XX:+UseG1GC
jvm jvm_serial_capped 320 150 15 -Xmx200m -XX:+UseSerialGC
jvm jvm_parallel_percentage 512 230 30 -XX:MaxRAMPercentage=60 -XX:+UseParallelGC
memcached_filled memcached_capped 256 128 2048
cgroup node_capped 256
run node_capped node --max-old-space-size=96 "$here/workloads/gc_workload.js" 60 20 0
# Allowed past the limit: they fill it and are killed.
jvm jvm_parallel_oversized 384 450 20 -Xmx768m -XX:+UseParallelGC
jvm jvm_percentage_oversized 256 230 20 -XX:MaxRAMPercentage=95 -XX:+UseG1GC
memcached_filled memcached_oversized_2 192 512 1536
cgroup node_oversized 256
run node_oversized node --max-old-space-size=1024 "$here/workloads/gc_workload.js" 40 20 1024

echo "$me: ${#names[@]} workloads under $base for $minutes min, traces in $tmp/traces"
deadline=$((SECONDS + minutes * 60))
while ((SECONDS < deadline)); do sleep 5; done
record_export
