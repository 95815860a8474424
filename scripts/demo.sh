#!/usr/bin/env bash
# make demo: the agent on this host, and a workload leaking 4 MiB/s into a 128 MiB memory cgroup.
# Shows the OOM prediction, then the kernel's kill, as they happen. Needs root. Cleans up after
# itself (agent, workload, cgroups) however it ends.
set -euo pipefail
build=${1:-build}
agent=$build/agent/tapio-agent
alloc=$build/tests/support/tapio-test-alloc
[[ $(id -u) -eq 0 ]] || { echo "demo: needs root (BPF, cgroups)" >&2; exit 1; }
[[ -x $agent && -x $alloc ]] || { echo "demo: build first (make build)" >&2; exit 1; }

# The workload's cgroup: below our own memory cgroup (v1 or v2), and the same path in cgroup2.
self_mem=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
if [[ -n $self_mem ]]; then
  mem_root=/sys/fs/cgroup/memory
  v2_root=/sys/fs/cgroup/unified
  limit_file=memory.limit_in_bytes
else
  self_mem=$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
  mem_root=/sys/fs/cgroup
  v2_root=
  limit_file=memory.max
fi
rel=${self_mem%/}/tapio-demo-$$
dirs=("$mem_root$rel")
[[ -n $v2_root && -d $v2_root ]] && dirs+=("$v2_root$rel")
tmp=$(mktemp -d)
agent_pid=
cleanup() {
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  for d in "${dirs[@]}"; do
    [[ -d $d ]] || continue
    while read -r p; do kill -9 "$p" 2>/dev/null || true; done < "$d/cgroup.procs"
    for _ in 1 2 3 4 5; do rmdir "$d" 2>/dev/null && break; sleep 0.2; done
  done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$agent" --output=json --output_min_severity=info --usage_interval_s=2 --summary_interval_s=0 \
  --grpc_address="unix://$tmp/tapio.sock" --metrics_address= >"$tmp/events.json" \
  2>"$tmp/agent.log" &
agent_pid=$!
for _ in $(seq 100); do grep -q 'running on node' "$tmp/agent.log" && break; sleep 0.1; done

for d in "${dirs[@]}"; do mkdir -p "$d"; done
echo $((128 << 20)) >"${dirs[0]}/$limit_file"
echo "demo: workload leaking 4 MiB/s into $rel (limit 128 MiB)"
(
  for d in "${dirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
  exec "$alloc" --mib=0 --step-mib=1 --rate=4 >/dev/null
) &
workload=$!
id=$(stat -c %i "${dirs[-1]}")

# Print the workload cgroup's events as they arrive, until the kill.
python3 -u - "$tmp/events.json" "$id" <<'PY' &
import json, sys, time
path, cgroup = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    while True:
        line = f.readline()
        if not line:
            time.sleep(0.1)
            continue
        e = json.loads(line)
        if e.get("cgroup_id") != cgroup:
            continue
        t = e["time"][11:19]
        if e["type"] == "memory_usage":
            u = e["memory_usage"]
            print(f"{t}  usage {u['usage_bytes'] >> 20:4d} MiB  non-reclaimable "
                  f"{u['non_reclaimable_bytes'] >> 20:4d} MiB  of {u['limit_bytes'] >> 20} MiB")
        elif e["type"] == "oom_prediction":
            p = e["oom_prediction"]
            print(f"{t}  PREDICTION {p['state']}: OOM in {p['time_to_oom_ms'] / 1000:.1f} s "
                  f"(confidence {p['confidence']:.2f}, {p['model']}): {p['reason']}")
        elif e["type"] == "oom_kill":
            k = e["oom_kill"]
            print(f"{t}  OOM KILL: pid {k['victim_pid']} ({k['victim_comm']}), constraint "
                  f"{k['constraint']}, anon {k['anon_rss_bytes'] >> 20} MiB")
            break
PY
printer=$!
wait "$workload" || true
for _ in $(seq 50); do kill -0 "$printer" 2>/dev/null || break; sleep 0.1; done
kill "$printer" 2>/dev/null || true
echo "demo: done (events in the agent's JSON output; cleaned up)"
