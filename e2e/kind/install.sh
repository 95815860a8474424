#!/usr/bin/env bash
# Installs the chart into the kind cluster with the locally loaded image and waits for the agent.
# shellcheck source=e2e/kind/lib.sh
source "$(dirname "$0")/lib.sh"
setup_tools

repo_name=${IMAGE%:*}
tag=${IMAGE##*:}
log "helm install $RELEASE ($IMAGE) into $NAMESPACE"
helm --kube-context "kind-$CLUSTER" upgrade --install "$RELEASE" "$REPO/deploy/helm/tapio" \
  --namespace "$NAMESPACE" --create-namespace \
  --set image.repository="$repo_name" --set image.tag="$tag" --set image.pullPolicy=Never \
  --set agent.logLevel=debug --wait --timeout "${ROLLOUT_TIMEOUT}s"
kctl -n "$NAMESPACE" rollout status "daemonset/$RELEASE" --timeout "${ROLLOUT_TIMEOUT}s"
kctl -n "$NAMESPACE" logs "daemonset/$RELEASE" --tail=20 >&2 || true
