#!/usr/bin/env bash
# Deployment checks, one per subcommand (each a ctest test, see tests/deploy/CMakeLists.txt):
#   lint       helm lint of the chart with default and all-features values
#   validate   helm template with several value sets; every object validated against the
#              Kubernetes/Prometheus Operator schemas and the least-privilege policy; a known-bad
#              fixture must be rejected
#   schema     values.schema.json rejects bad values, naming the field
#   drift      deploy/manifests and deploy/prometheus equal a fresh render of the chart
#   rules      promtool check rules + promtool test rules (tests/deploy/rules_test.yaml)
#   scripts    shellcheck on every shell script of the project
# Usage: tests/deploy/deploy_test.sh SUBCOMMAND   (run from anywhere; cleans up its temp dir)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
chart=$repo/deploy/helm/tapio
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config \
  HELM_DATA_HOME=$work/helm/data

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

tools() {
  tools_dir=$("$repo/scripts/tools.sh")
  helm=$tools_dir/bin/helm
  export TAPIO_NODE_MODULES=$tools_dir/node/node_modules
}

all_on=serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true
all_on+=,rbac.podMetadata=true,agent.readKmsg=true,agent.readProcessEnvironment=true

case ${1:-} in
  lint)
    tools
    "$helm" lint --strict "$chart"
    "$helm" lint --strict "$chart" --set "$all_on"
    "$helm" lint --strict "$chart" --set kernel.legacySysAdmin=true,kernel.raiseMemlock=true
    ;;
  validate)
    tools
    "$helm" template tapio "$chart" -n tapio >"$work/default.yaml"
    "$helm" template tapio "$chart" -n tapio --set "$all_on" >"$work/all.yaml"
    "$helm" template tapio "$chart" -n tapio \
      --set kernel.legacySysAdmin=true,kernel.raiseMemlock=true,serviceAccount.create=false \
      --set agent.metricsLabels=cgroup --set agent.stateDir= >"$work/legacy.yaml"
    node "$repo/deploy/tools/validate.mjs" "$work/default.yaml" "$work/all.yaml" "$work/legacy.yaml"
    # Least privilege by default: exactly BPF and PERFMON.
    caps=$(sed -n '/^ *add:$/,/^ *volumeMounts:$/p' "$work/default.yaml" |
      grep -oE '^ *- [A-Z_]+$' | tr -d ' -' | sort | tr '\n' ' ')
    [[ $caps == "BPF PERFMON " ]] || fail "default capabilities are '$caps', want 'BPF PERFMON '"
    caps=$(sed -n '/^ *add:$/,/^ *volumeMounts:$/p' "$work/all.yaml" |
      grep -oE '^ *- [A-Z_]+$' | tr -d ' -' | sort | tr '\n' ' ')
    [[ $caps == "BPF DAC_READ_SEARCH PERFMON SYSLOG SYS_PTRACE " ]] ||
      fail "all-on capabilities are '$caps'"
    grep -q 'kind: ClusterRole' "$work/default.yaml" && fail "default render has RBAC objects"
    # Restart priors survive agent updates by default; agent.stateDir="" keeps them in memory.
    grep -q -- '- --prior_state_file=/var/lib/tapio/priors.json$' "$work/default.yaml" ||
      fail "default render keeps no restart priors"
    grep -qE 'prior_state_file|name: state$' "$work/legacy.yaml" &&
      fail "agent.stateDir='' still mounts a state dir"
    grep -q 'automountServiceAccountToken: false' "$work/default.yaml" ||
      fail "default render mounts a service account token"
    # The validator itself must reject a bad object.
    if node "$repo/deploy/tools/validate.mjs" "$repo/tests/fixtures/deploy/bad-daemonset.yaml" \
      2>"$work/bad.err"; then
      fail "validate.mjs accepted tests/fixtures/deploy/bad-daemonset.yaml"
    fi
    for want in 'containerPort must be integer' 'privileged must be false' \
      'capability NET_ADMIN' 'drop must include ALL' 'readOnlyRootFilesystem' 'gRPC probe'; do
      grep -q "$want" "$work/bad.err" || fail "validate.mjs did not report '$want'"
    done
    ;;
  schema)
    tools
    for bad in agent.metricsLabels=image agent.healthPort=0 image.pullPolicy=Sometimes \
      agent.logLevel=loud prometheusRule.oomHorizonSeconds=0 agent.stateDir=var/lib/tapio \
      prometheusRule.oomEvaluationInterval=15sec prometheusRule.oomPredictedFor=soon; do
      if "$helm" template tapio "$chart" --set "$bad" >/dev/null 2>"$work/err"; then
        fail "values.schema.json accepted --set $bad"
      fi
      field=${bad%%=*}
      grep -q "${field##*.}" "$work/err" || fail "error for $bad does not name the field: $(cat "$work/err")"
    done
    if "$helm" template tapio "$chart" --set agent.unknownKnob=1 >/dev/null 2>&1; then
      fail "values.schema.json accepted an unknown key"
    fi
    ;;
  drift)
    tools
    "$repo/scripts/render-manifests.sh" "$work/out"
    for f in deploy/manifests/tapio.yaml deploy/manifests/tapio-monitoring.yaml \
      deploy/prometheus/tapio-rules.yaml; do
      diff -u "$repo/$f" "$work/out/$f" ||
        fail "$f differs from the chart: run scripts/render-manifests.sh and commit"
    done
    ;;
  rules)
    command -v promtool >/dev/null || fail "promtool missing (scripts/install-deps.sh test)"
    promtool check rules "$repo/deploy/prometheus/tapio-rules.yaml"
    (cd "$repo/tests/deploy" && promtool test rules rules_test.yaml)
    ;;
  scripts)
    command -v shellcheck >/dev/null || fail "shellcheck missing (scripts/install-deps.sh test)"
    # Every shell script of the project, build trees aside.
    mapfile -t scripts < <(cd "$repo" && find scripts e2e tests bench sim .ci -name build -prune \
      -o -type f \( -name '*.sh' -o -path .ci/run \) -print | sort)
    [[ ${#scripts[@]} -ge 10 ]] || fail "found only ${#scripts[@]} scripts to check"
    (cd "$repo" && shellcheck --severity=style --external-sources "${scripts[@]}")
    echo "shellcheck: ${#scripts[@]} scripts clean"
    ;;
  *)
    echo "usage: $0 lint|validate|schema|drift|rules|scripts" >&2
    exit 2
    ;;
esac
echo "deploy_test $1: ok"
