#!/usr/bin/env bash
# Runs the agent image as a real CRI pod with the chart's security context, mounts and args, and
# checks that it loads its programs and reports an OOM kill in another pod (the local stand-in for
# a kind node; e2e/image/cri_pod_test.cc says exactly what is asserted).
#   1. builds the image from the current tree and saves it as an OCI archive (e2e/image/build.sh;
#      skipped with --archive FILE of an earlier build);
#   2. builds the test (its own build dir, only the components it needs) and runs it: a private
#      containerd (e2e/containerd fixture) imports the archive and runs both pods via the CRI.
# Usage: e2e/image/run-cri-pod.sh [--archive FILE] [--build-dir DIR] [--jobs 2]
# Needs root, podman, debootstrap, containerd, runc, gcc. Cleans up pods, cgroups and mounts
# itself (also on failure); the archive and build dir stay (pass them again to skip the rebuild).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
archive=""
build_dir=$repo/build-image
jobs=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --archive) archive=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "run-cri-pod.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "run-cri-pod.sh: $*" >&2; }

if [[ -z $archive ]]; then
  archive=/var/tmp/tapio-image-cri-pod.tar
  log "building the image (e2e/image/build.sh) into $archive"
  "$repo/e2e/image/build.sh" --jobs "$jobs" --oci-archive "$archive"
fi
[[ -s $archive ]] || { log "no image archive $archive"; exit 1; }

log "building image_cri_pod_test in $build_dir"
cmake -S "$repo" -B "$build_dir" -DTAPIO_BUILD_AGENT=OFF -DTAPIO_WITH_BPF=OFF \
  -DTAPIO_WITH_PREDICT=OFF -DTAPIO_WITH_METRICS=OFF -DTAPIO_BUILD_BENCH=OFF \
  -DCMAKE_PROJECT_tapio_INCLUDE="$repo/e2e/image/include.cmake" >/dev/null
cmake --build "$build_dir" -j"$jobs" --target image_cri_pod_test

tag=tapio:$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$repo/deploy/helm/tapio/Chart.yaml")
log "running the pods (image docker.io/library/$tag from $archive)"
cd "$repo"
TAPIO_IMAGE_ARCHIVE=$archive TAPIO_IMAGE=docker.io/library/$tag \
  "$build_dir/image_cri_pod_test" --gtest_color=no
