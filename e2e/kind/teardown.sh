#!/usr/bin/env bash
# Deletes the kind cluster (and with it everything the e2e installed) and the image archive.
# shellcheck source=e2e/kind/lib.sh
source "$(dirname "$0")/lib.sh"
need kind
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "deleting kind cluster $CLUSTER"
  kind delete cluster --name "$CLUSTER"
fi
rm -f "$IMAGE_ARCHIVE"
