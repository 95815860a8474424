#!/usr/bin/env bash
# Builds the agent image (e2e/image/build.sh, podman; or docker if SKIP_PODMAN=1) and loads it
# into the kind node. Set SKIP_BUILD=1 to load an existing $IMAGE_ARCHIVE.
# shellcheck source=e2e/kind/lib.sh
source "$(dirname "$0")/lib.sh"
setup_tools

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  if [[ ${SKIP_PODMAN:-0} == 1 ]]; then
    need docker
    log "docker build $IMAGE"
    docker build --network=host -t "$IMAGE" "$REPO"
    docker save -o "$IMAGE_ARCHIVE" "$IMAGE"
  else
    "$REPO/e2e/image/build.sh" --tag "$IMAGE" --oci-archive "$IMAGE_ARCHIVE"
  fi
fi
[[ -s $IMAGE_ARCHIVE ]] || die "no image archive at $IMAGE_ARCHIVE"
log "loading $IMAGE_ARCHIVE into $CLUSTER"
kind load image-archive "$IMAGE_ARCHIVE" --name "$CLUSTER"
