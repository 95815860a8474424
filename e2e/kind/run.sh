#!/usr/bin/env bash
# The whole kind e2e: create the cluster, build and load the image, install the chart, run the
# leak test, tear down (unless KEEP_CLUSTER=1). Needs a Linux host with docker, kind, podman
# (or SKIP_PODMAN=1 for docker build), curl, and a BTF kernel >= 5.8. See docs/install.md.
# shellcheck source=e2e/kind/lib.sh
source "$(dirname "$0")/lib.sh"

if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then
  trap '"$E2E_DIR/teardown.sh"' EXIT
fi
"$E2E_DIR/create-cluster.sh"
"$E2E_DIR/load-image.sh"
"$E2E_DIR/install.sh"
"$E2E_DIR/leak-test.sh"
