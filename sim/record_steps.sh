#!/usr/bin/env bash
# Records real-kernel traces of JVMs whose heaps are committed in steps, both sides of the
# staircase model (docs/prediction.md, "Heaps committed in steps"): heaps whose -Xmx is above the
# container's limit, which the kernel OOM-kills, and heaps capped below it, which level off near
# the limit and live. Written, and its workloads chosen, after the staircase model was, so that
# what it records is no test the model was fitted to.
#
#   sim/record_steps.sh OUT_DIR MAX_MINUTES [BUILD_DIR]
#
# Writes OUT_DIR/kernel_<name>.jsonl per workload, OUT_DIR/events.json and OUT_DIR/agent.log;
# stops after MAX_MINUTES (the capped heaps run until then). Labels come from the kernel's OOM
# kills (sim/record_common.sh): check them before calling a trace a positive or a negative.
# Needs root and openjdk (javac). Cleans up every process, cgroup and file it made.
set -euo pipefail
out=${1:?OUT_DIR}
minutes=${2:?MAX_MINUTES}
build=${3:-build}
me=record_steps
here=$(cd "$(dirname "$0")" && pwd)
needs=(javac java)
# shellcheck source=sim/record_common.sh
source "$here/record_common.sh"
record_start

compile_churn

# Heaps allowed past the limit: each collector grows its heap its own way.
jvm g1_oversized 256 300 20 -Xmx512m -XX:+UseG1GC
jvm parallel_oversized 256 300 20 -Xmx512m -XX:+UseParallelGC
jvm serial_oversized 256 300 20 -Xmx512m -XX:+UseSerialGC
jvm g1_slow_oversized 256 300 5 -Xmx512m -XX:+UseG1GC
jvm g1_large_oversized 512 600 40 -Xmx1g -XX:+UseG1GC
# Heaps capped below the limit: they level off and live.
jvm g1_capped 256 140 20 -Xmx192m -XX:+UseG1GC
jvm parallel_capped 256 140 20 -Xmx192m -XX:+UseParallelGC
jvm g1_ram_percentage 256 140 20 -XX:MaxRAMPercentage=75 -XX:+UseG1GC

echo "$me: ${#names[@]} workloads under $base for $minutes min, traces in $tmp/traces"
deadline=$((SECONDS + minutes * 60))
while ((SECONDS < deadline)); do sleep 5; done
record_export
