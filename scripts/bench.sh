#!/usr/bin/env bash
# Runs every benchmark binary the build produced (bench/<component>/...), one after another so
# they do not compete for the 2 cores, and keeps their output in <build>/bench-results/.
# docs/performance.md records the numbers with this command and the machine.
set -euo pipefail
build=${1:-build}
out=$build/bench-results
mkdir -p "$out"
mapfile -t benches < <(find "$build/bench" -type f -executable -name '*_bench' | sort)
if [[ ${#benches[@]} -eq 0 ]]; then
  echo "bench: no benchmarks under $build/bench (configure with -DTAPIO_BUILD_BENCH=ON)" >&2
  exit 1
fi
for b in "${benches[@]}"; do
  name=$(basename "$b")
  echo "== $name"
  "$b" --benchmark_min_time=1 | tee "$out/$name.txt"
done
# Kernel -> subscriber latency through a real agent (root: it loads the BPF programs).
if [[ $(id -u) -eq 0 && -x $build/bench/api/api_e2e_latency && -x $build/agent/tapio-agent ]]; then
  echo "== api_e2e_latency"
  bench/api/e2e_latency.sh "$build" 1000000 | tee "$out/api_e2e_latency.txt"
fi
echo "bench: results in $out/"
