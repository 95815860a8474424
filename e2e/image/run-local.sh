#!/usr/bin/env bash
# Local stand-in for a kind node: runs the built image under containerd with the chart's
# security settings (read-only root fs, all capabilities dropped but BPF and PERFMON, the
# runtime's default seccomp profile, host pid namespace, the chart's mounts), checks that the
# agent loads its BPF programs, then OOM-kills a memory hog in a test cgroup outside the
# container and checks that the agent reports that kill.
#
# Usage: e2e/image/run-local.sh [--archive FILE] [--tag tapio:0.1.0] [--extra-cap CAP_X]...
#                               [--no-seccomp] [--keep-logs DIR] [-- AGENT_ARGS...]
#   --archive    OCI archive from `e2e/image/build.sh --oci-archive FILE` (required unless the
#                image is already in the private containerd, which is never kept)
#   --extra-cap  add a capability (e.g. CAP_SYS_ADMIN, as the chart's kernel.legacySysAdmin)
# Starts a private containerd on a unix socket in a temp dir (no CRI plugin) and stops it, and
# removes every cgroup and file it made, on exit. Needs root, containerd, runc.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
tag=tapio:$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$repo/deploy/helm/tapio/Chart.yaml")
archive=""
caps=(CAP_BPF CAP_PERFMON)
seccomp=(--seccomp)
keep_logs=""
agent_args=(--output=json --kmsg= --summary_interval_s=5)
while [[ $# -gt 0 ]]; do
  case $1 in
    --archive) archive=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --extra-cap) caps+=("$2"); shift 2 ;;
    --no-seccomp) seccomp=(); shift ;;
    --keep-logs) keep_logs=$2; shift 2 ;;
    --) shift; agent_args=("$@"); break ;;
    *) echo "run-local.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "run-local.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
for tool in containerd ctr runc; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install containerd runc)"
done
[[ -n $archive && -s $archive ]] || die "--archive FILE (from e2e/image/build.sh --oci-archive)"

work=$(mktemp -d /tmp/tapio-run-local.XXXXXX)
containerd_pid=""
cg_name=tapio-run-local-$$
cg_v1=/sys/fs/cgroup/memory/$cg_name
cg_v2=""
for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
  if [[ -f $root/cgroup.controllers ]]; then cg_v2=$root/$cg_name; break; fi
done
id=tapio-run-local-$$
sock=$work/containerd.sock

cleanup() {
  set +e
  if [[ -S $sock ]]; then
    ctr -a "$sock" -n tapio task kill -s SIGKILL "$id" >/dev/null 2>&1
    sleep 1
    ctr -a "$sock" -n tapio task delete -f "$id" >/dev/null 2>&1
    ctr -a "$sock" -n tapio container delete "$id" >/dev/null 2>&1
  fi
  if [[ -n $containerd_pid ]]; then
    kill "$containerd_pid" 2>/dev/null
    wait "$containerd_pid" 2>/dev/null
  fi
  for cg in "$cg_v1" "$cg_v2"; do
    [[ -n $cg && -d $cg ]] || continue
    while read -r pid; do kill -9 "$pid" 2>/dev/null; done <"$cg/cgroup.procs"
    sleep 0.2
    rmdir "$cg" 2>/dev/null || log "could not remove $cg"
  done
  if [[ -n $keep_logs ]]; then
    mkdir -p "$keep_logs"
    cp "$work"/*.log "$keep_logs"/ 2>/dev/null
  fi
  umount -R "$work/root" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "$work/runc"
TOML
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || die "containerd did not start: $(tail -5 "$work/containerd.log")"

log "importing $archive"
ctr -a "$sock" -n tapio images import "$archive" >/dev/null
image=$(ctr -a "$sock" -n tapio images ls -q | grep -m1 -F "$tag" || true)
[[ -n $image ]] || die "image $tag not in $archive ($(ctr -a "$sock" -n tapio images ls -q))"

# ctr has no "drop ALL": drop each capability of its default set (containerd oci.defaultCaps).
cap_flags=()
for c in CAP_CHOWN CAP_DAC_OVERRIDE CAP_FSETID CAP_FOWNER CAP_MKNOD CAP_NET_RAW CAP_SETGID \
  CAP_SETUID CAP_SETFCAP CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_SYS_CHROOT CAP_KILL CAP_AUDIT_WRITE; do
  cap_flags+=(--cap-drop "$c")
done
for c in "${caps[@]}"; do cap_flags+=(--cap-add "$c"); done
log "running $image with ${caps[*]} ${seccomp[*]:-(no seccomp)}, read-only root, host pid ns"
ctr -a "$sock" -n tapio run --rm --read-only "${seccomp[@]}" "${cap_flags[@]}" \
  --with-ns "pid:/proc/$$/ns/pid" \
  --mount type=bind,src=/sys/fs/bpf,dst=/sys/fs/bpf,options=rbind:rw \
  --mount type=bind,src=/sys/kernel/tracing,dst=/sys/kernel/tracing,options=rbind:ro \
  --mount type=bind,src=/sys/fs/cgroup,dst=/sys/fs/cgroup,options=rbind:ro \
  --mount type=bind,src=/proc,dst=/host/proc,options=rbind:ro \
  --mount type=tmpfs,src=tmpfs,dst=/tmp,options=size=16m \
  "$image" "$id" /usr/local/bin/tapio-agent "${agent_args[@]}" \
  >"$work/agent.out.log" 2>"$work/agent.err.log" &

wait_for() {  # wait_for SECONDS FILE PATTERN
  local deadline=$(( $(date +%s) + $1 ))
  until grep -q -- "$3" "$2" 2>/dev/null; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.5
  done
}
wait_for 30 "$work/agent.err.log" "BPF object loaded" ||
  die "agent did not load its programs: $(tail -20 "$work/agent.err.log")"
log "agent loaded: $(grep -m1 'BPF object loaded' "$work/agent.err.log")"
agent_pid=$(ctr -a "$sock" -n tapio task ls | awk -v id="$id" '$1 == id {print $2}')
if [[ -n $agent_pid ]]; then
  cap_eff=$(awk '/^CapEff:/ {print $2}' "/proc/$agent_pid/status")
  log "agent pid $agent_pid (host ns) CapEff=$cap_eff: $(capsh --decode="$cap_eff" 2>/dev/null | cut -d= -f2)"
fi
sleep 2

log "OOM-killing a memory hog in $cg_v1 (limit 32 MiB)"
mkdir "$cg_v1"
[[ -n $cg_v2 ]] && mkdir "$cg_v2"
echo $((32 << 20)) >"$cg_v1/memory.limit_in_bytes"
# tail buffers /dev/zero looking for a newline that never comes: it grows until killed.
bash -c "echo \$\$ >$cg_v1/cgroup.procs; ${cg_v2:+echo \$\$ >$cg_v2/cgroup.procs;} exec tail /dev/zero" \
  >/dev/null 2>&1 || true
grep -q '^oom_kill 1' "$cg_v1/memory.oom_control" || die "the hog was not OOM killed"
wait_for 20 "$work/agent.out.log" '"oom_kill"' ||
  die "agent reported no oom_kill: $(tail -5 "$work/agent.err.log")"
log "agent reported: $(grep -m1 '"oom_kill"' "$work/agent.out.log" | cut -c1-300)"
log "PASS: image runs with the chart's privileges, loads its programs, reports the OOM kill"
