#!/usr/bin/env bash
# Renders the helm chart (the source of truth) into the plain manifests users can apply without
# helm, and the plain Prometheus rules file:
#   deploy/manifests/tapio.yaml             the agent with default values (namespace tapio)
#   deploy/manifests/tapio-monitoring.yaml  ServiceMonitor, PrometheusRule, dashboard ConfigMap
#   deploy/prometheus/tapio-rules.yaml      the alerting rules for a plain Prometheus
# Usage: scripts/render-manifests.sh [OUT_DIR]   (default: the repo; tests render to a temp dir
# and diff it against the committed files).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo}
tools=$("$repo/scripts/tools.sh")
helm=$tools/bin/helm
chart=$repo/deploy/helm/tapio
namespace=tapio
release=tapio

helm_home=$(mktemp -d)
trap 'rm -rf "$helm_home"' EXIT
export HELM_CACHE_HOME=$helm_home/cache HELM_CONFIG_HOME=$helm_home/config \
  HELM_DATA_HOME=$helm_home/data

mkdir -p "$out/deploy/manifests" "$out/deploy/prometheus"
header="# Rendered from deploy/helm/tapio by scripts/render-manifests.sh; do not edit."

{
  echo "$header"
  "$helm" template "$release" "$chart" --namespace "$namespace"
} >"$out/deploy/manifests/tapio.yaml"

{
  echo "$header"
  "$helm" template "$release" "$chart" --namespace "$namespace" \
    --set serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true \
    --show-only templates/servicemonitor.yaml \
    --show-only templates/prometheusrule.yaml \
    --show-only templates/dashboard-configmap.yaml
} >"$out/deploy/manifests/tapio-monitoring.yaml"

NODE_PATH=$tools/node/node_modules node "$repo/deploy/tools/extract-rules.cjs" \
  "$out/deploy/manifests/tapio-monitoring.yaml" >"$out/deploy/prometheus/tapio-rules.yaml"
