#!/usr/bin/env bash
# Agent memory and CPU while tracking N processes (default 10,000): agent RSS (VmRSS, VmHWM)
# plus the kernel memory of its BPF maps (fdinfo memlock), and the agent's CPU time (user +
# system, including the task iterator's kernel time) over 10 s of 1 s snapshot passes.
#   bench/agent/memory_10k.sh [build-dir] [N]        (root)
set -euo pipefail
build=${1:-build}
n=${2:-10000}
agent=$build/agent/tapio-agent
idle=$build/bench/agent/idle-procs
tmp=$(mktemp -d)
idle_pid=''
agent_pid=''
cleanup() {
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [[ -n $idle_pid ]] && kill "$idle_pid" 2>/dev/null && wait "$idle_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
"$idle" "$n" >"$tmp/idle.out" &
idle_pid=$!
for _ in $(seq 600); do grep -q ready "$tmp/idle.out" && break; sleep 0.1; done
procs=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
"$agent" --output=none --summary_interval_s=0 --snapshot_interval_ms=1000 \
  --grpc_address="unix://$tmp/tapio.sock" --metrics_address=127.0.0.1:0 2>"$tmp/agent.log" &
agent_pid=$!
sleep 4   # start-up and the first passes
ticks() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
t0=$(ticks)
sleep 10  # ~10 snapshot passes, each seeing every process
t1=$(ticks)
hz=$(getconf CLK_TCK)
rss_kb=$(awk '/^VmRSS/{print $2}' /proc/$agent_pid/status)
hwm_kb=$(awk '/^VmHWM/{print $2}' /proc/$agent_pid/status)
# The BPF maps the agent mmaps (the ring buffer: its data pages mapped twice) are kernel memory,
# resident in VmRSS from the mmap on and counted again in memlock below.
mapped_kb=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {bpf = ($6 == "anon_inode:bpf-map")}
                 /^Rss:/ && bpf {kb += $2} END {print kb + 0}' /proc/$agent_pid/smaps)
maps=0
for fd in "/proc/$agent_pid"/fdinfo/*; do
  if grep -q '^map_type' "$fd" 2>/dev/null; then
    m=$(awk '/^memlock/{print $2}' "$fd"); maps=$((maps + m))
  fi
done
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=
tracked=$(grep -o 'processes=[0-9]* snapshot_every=[^ ]*' "$tmp/agent.log" | tail -1)
echo "processes on host: $procs; agent $tracked"
echo "agent VmRSS: $((rss_kb / 1024)) MiB (peak VmHWM $((hwm_kb / 1024)) MiB), of which BPF maps mmapped: $((mapped_kb / 1024)) MiB"
echo "BPF maps (memlock): $((maps / 1024 / 1024)) MiB"
echo "total: $(((rss_kb * 1024 + maps) / 1024 / 1024)) MiB (VmRSS + memlock, counting the mmapped maps twice)"
echo "total, each page once: $((((rss_kb - mapped_kb) * 1024 + maps) / 1024 / 1024)) MiB"
echo "agent CPU over 10 s: $(( (t1 - t0) * 1000 / hz / 10 )) ms/s ($(( (t1 - t0) * 100 / hz / 10 ))% of one core)"
