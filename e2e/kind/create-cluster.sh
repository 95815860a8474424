#!/usr/bin/env bash
# Creates the kind cluster with the mounts the agent needs (kind-config.yaml) and makes sure
# bpffs and tracefs are mounted in the node container.
# shellcheck source=e2e/kind/lib.sh
source "$(dirname "$0")/lib.sh"
setup_tools
need docker

for fs in bpf:/sys/fs/bpf tracefs:/sys/kernel/tracing; do
  [[ -d ${fs#*:} ]] || die "host has no ${fs#*:}"
  if ! mountpoint -q "${fs#*:}"; then
    log "mounting ${fs%%:*} at ${fs#*:} on the host"
    mount -t "${fs%%:*}" "${fs%%:*}" "${fs#*:}"
  fi
done
[[ -r /sys/kernel/btf/vmlinux ]] || die "host kernel has no BTF (/sys/kernel/btf/vmlinux)"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "cluster $CLUSTER exists"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config "$E2E_DIR/kind-config.yaml" --wait 120s
fi
node=$CLUSTER-control-plane
docker exec "$node" sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf'
docker exec "$node" sh -c \
  'mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing'
kctl wait --for=condition=Ready node --all --timeout=120s
log "cluster $CLUSTER ready"
