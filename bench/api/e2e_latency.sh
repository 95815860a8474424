#!/bin/sh
# Kernel -> subscriber latency, end to end (root): starts tapio-agent with the per-fault rss_stat
# hook on every cgroup and a one-page threshold, then runs api_e2e_latency (a fault storm plus a
# subscriber) at each fault rate given. docs/performance/api.md records the results.
#   bench/api/e2e_latency.sh [BUILD_DIR] [FAULT_RATE...]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
rates=${*:-20000 100000 1000000}
dir=$(mktemp -d /tmp/tapio-e2e-latency-XXXXXX)
"$build/agent/tapio-agent" --output=none --rss_stat_hook --rss_track_all --rss_threshold_kib=4 \
  --grpc_address="unix://$dir/tapio.sock" --metrics_address=127.0.0.1:0 \
  --health_address=127.0.0.1:0 2>"$dir/agent.log" &
agent=$!
trap 'kill $agent 2>/dev/null; wait $agent 2>/dev/null; rm -rf "$dir"' EXIT
i=0
until [ -S "$dir/tapio.sock" ]; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 $agent 2>/dev/null; then
    echo "e2e_latency: the agent did not start:" >&2
    cat "$dir/agent.log" >&2
    exit 1
  fi
  sleep 0.1
done
for rate in $rates; do
  for batches in true false; do
    "$build/bench/api/api_e2e_latency" --address="unix://$dir/tapio.sock" --rate="$rate" \
      --batches=$batches --duration=5s
  done
done
