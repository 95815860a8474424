#!/usr/bin/env bash
# Deploys the leaking pod and asserts, through tapioctl (the gRPC API, from inside the agent pod)
# and through the metrics, first an OOM prediction and then the OOM kill.
# shellcheck source=e2e/kind/lib.sh
source "$(dirname "$0")/lib.sh"
setup_tools
need curl

work=$(mktemp -d)
pf_pid=""
cleanup() {
  [[ -n $pf_pid ]] && kill "$pf_pid" 2>/dev/null
  kctl delete namespace "$WORKLOAD_NAMESPACE" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

socket=$(kctl -n "$NAMESPACE" get daemonset "$RELEASE" \
  -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -o 'unix://[^"]*' | head -1)
[[ -n $socket ]] || die "no --grpc_address in the DaemonSet"
agent_pod=$(kctl -n "$NAMESPACE" get pods -l "app.kubernetes.io/instance=$RELEASE" \
  -o jsonpath='{.items[0].metadata.name}')
[[ -n $agent_pod ]] || die "no agent pod"
tapioctl() { kctl -n "$NAMESPACE" exec "$agent_pod" -- tapioctl --address="$socket" "$@"; }

log "agent info"
tapioctl info >&2

# Watch predictions and kills for the test namespace in the background, as JSON lines.
tapioctl watch --output=json --namespace="$WORKLOAD_NAMESPACE" --type=oom_prediction,oom_kill \
  --timeout="$((PREDICTION_TIMEOUT + OOM_TIMEOUT))s" >"$work/events.jsonl" 2>"$work/watch.err" &
watch_pid=$!
sleep 2

log "deploying the leaker"
sed "s|IMAGE_PLACEHOLDER|$IMAGE|" "$E2E_DIR/leaker.yaml" | kctl apply -f -

# Metrics from the agent pod through a port-forward.
port=${METRICS_LOCAL_PORT:-19464}
kctl -n "$NAMESPACE" port-forward "pod/$agent_pod" "$port:9464" >"$work/pf.log" 2>&1 &
pf_pid=$!
metric() {
  curl -sf "http://127.0.0.1:$port/metrics" |
    grep -E "^$1\{[^}]*namespace=\"$WORKLOAD_NAMESPACE\"[^}]*pod=\"leaker\"" | awk '{print $2}' |
    head -1
}

has_event() { grep -q "\"$1\"" "$work/events.jsonl"; }
prediction_seen_in_metrics=0
predicted() {
  if [[ -n $(metric tapio_container_oom_predicted_seconds) ]] ||
    [[ $(metric tapio_container_oom_risk) == 1 ]]; then
    prediction_seen_in_metrics=1
  fi
  has_event oom_prediction && [[ $prediction_seen_in_metrics == 1 ]]
}
log "waiting for an OOM prediction (tapioctl and metrics, ${PREDICTION_TIMEOUT}s)"
retry_until "$PREDICTION_TIMEOUT" predicted ||
  die "no prediction: events=$(wc -l <"$work/events.jsonl") metrics=$prediction_seen_in_metrics"
log "prediction seen: $(grep -m1 oom_prediction "$work/events.jsonl")"

killed() {
  local kills
  kills=$(metric tapio_container_oom_kills_total)
  has_event oom_kill && [[ -n $kills && $kills != 0 ]]
}
log "waiting for the OOM kill (${OOM_TIMEOUT}s)"
retry_until "$OOM_TIMEOUT" killed || die "no OOM kill seen through tapioctl and metrics"
log "OOM kill seen: $(grep -m1 oom_kill "$work/events.jsonl")"
log "tapio_container_oom_kills_total=$(metric tapio_container_oom_kills_total)"

reason=$(kctl -n "$WORKLOAD_NAMESPACE" get pod leaker \
  -o jsonpath='{.status.containerStatuses[0].state.terminated.reason}')
[[ $reason == OOMKilled ]] || die "kubelet reports '$reason', want OOMKilled"
# The prediction must precede the kill in the event stream.
first_prediction=$(grep -n -m1 oom_prediction "$work/events.jsonl" | cut -d: -f1)
first_kill=$(grep -n -m1 oom_kill "$work/events.jsonl" | cut -d: -f1)
(( first_prediction < first_kill )) || die "the kill came before any prediction"
kill "$watch_pid" 2>/dev/null || true
log "PASS: prediction then OOM kill, through tapioctl and metrics"
