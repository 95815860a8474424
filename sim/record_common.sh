# Shared by sim/record_{negatives,positives,steps,caps}.sh (sourced, not run): one agent
# with --record_traces_dir watching workloads, each in its own memory cgroup below ours (v1
# memory and the same path in cgroup2, as runtimes do here), and everything cleaned up however
# the recording ends. The caller sets `out` (output dir), `build` (build dir), `me` (its name,
# for messages) and `needs` (the commands its workloads run), then calls record_start,
# cgroup/run/load (or jvm) per workload, and record_export.
# shellcheck shell=bash

# shellcheck disable=SC2154  # needs: set by the caller
for tool in "${needs[@]}"; do
  command -v "$tool" >/dev/null || { echo "${me:?}: $tool not installed" >&2; exit 1; }
done
agent=${build:?}/agent/tapio-agent
[[ $(id -u) -eq 0 ]] || { echo "${me:?}: needs root" >&2; exit 1; }
[[ -x $agent ]] || { echo "$me: build first ($agent)" >&2; exit 1; }
mkdir -p "${out:?}"

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
mkdir -p "$shm"

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
# procs NAME: how many processes NAME's cgroup still holds.
procs() {
  wc -l <"$mem_root$base/$1/cgroup.procs"
}

# compile_churn: sim/workloads/Churn.java into $tmp/java, before any cgroup exists (a compile is
# not part of a trace).
compile_churn() {
  mkdir -p "$tmp/java"
  javac -d "$tmp/java" "$(dirname "${BASH_SOURCE[0]}")/workloads/Churn.java"
}

# jvm NAME LIMIT_MIB LIVE_MIB GARBAGE_MIB_S JVM_FLAGS...: Churn (a live set filled at random
# while garbage is made; compile_churn first) in its own cgroup.
jvm() {
  local n=$1 limit=$2 live=$3 rate=$4
  shift 4
  cgroup "$n" "$limit"
  run "$n" java "$@" -cp "$tmp/java" Churn "$live" "$rate"
}

# memcached_filled NAME LIMIT_MIB ITEM_MIB KIB_S [KEYS]: memcached -m ITEM_MIB in its own cgroup,
# filled at KIB_S by sim/workloads/mc_load.py from outside (KEYS: its working set, else unbounded).
memcached_filled() {
  local n=$1 workloads
  workloads=$(dirname "${BASH_SOURCE[0]}")/workloads
  cgroup "$n" "$2"
  install -d -o memcache "$tmp/$n"
  run "$n" memcached -u memcache -m "$3" -s "$tmp/$n/mc.sock" -a 0666
  load bash -c "sleep 2; exec python3 $workloads/mc_load.py $tmp/$n/mc.sock $4 ${5:-}"
}

# record_start: the agent, recording every cgroup it tracks; events at warning and above.
record_start() {
  "$agent" --output=json --output_min_severity=warning --summary_interval_s=60 \
    --record_traces_dir="$tmp/traces" --grpc_address= --metrics_address= \
    >"$out/events.json" 2>"$out/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do grep -q 'running on node' "$out/agent.log" && break; sleep 0.1; done
  grep -q 'running on node' "$out/agent.log" || { echo "$me: agent did not start" >&2; exit 1; }
}

# record_export: stops the workloads, then writes OUT/kernel_<name>.jsonl per workload (the
# header's class set, nothing else edited) and the workloads' logs.
record_export() {
  # Stop the workloads first, then the agent (cleanup), so every trace ends with its workload.
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 3
  for n in "${names[@]}"; do
    id=$(stat -c %i "${v2_root:-$mem_root}$base/$n")
    [[ -f $tmp/traces/$id.jsonl ]] || { echo "$me: no trace for $n" >&2; continue; }
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
label = next((json.loads(l)["label"] for l in lines[1:] if l.startswith('{"label"')), None)
print(f"{dst}: {len(lines) - 1} lines, oom_time_ms={header.get('oom_time_ms')}, label={label}")
PY
  done
  cp "$tmp"/*.log "$out/" 2>/dev/null || true
}
