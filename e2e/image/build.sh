#!/usr/bin/env bash
# Builds the Tapio image with podman, without a registry:
#   1. the base image debian:bookworm (the Dockerfile's FROM), made once with
#      `debootstrap --variant=minbase bookworm` and `podman import`ed under that name;
#   2. `podman build --network=host` of the Dockerfile (the whole project: minutes on 2 cores);
#   3. optionally `podman save --format oci-archive` and `ctr images import` into a containerd
#      (the local stand-in for `kind load`), for running it as a pod with the chart's settings.
# Usage: e2e/image/build.sh [--tag tapio:0.1.0] [--jobs 2] [--base-only]
#                           [--oci-archive FILE] [--containerd-socket SOCK]
# Needs root, podman and debootstrap (Debian packages).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
tag=tapio:$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$repo/deploy/helm/tapio/Chart.yaml")
jobs=2
base_only=0
archive=""
containerd_socket=""
base=docker.io/library/debian:bookworm
cache=${XDG_CACHE_HOME:-$HOME/.cache}/tapio-tools

while [[ $# -gt 0 ]]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --base-only) base_only=1; shift ;;
    --oci-archive) archive=$2; shift 2 ;;
    --containerd-socket) containerd_socket=$2; shift 2 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "build.sh: $*" >&2; }
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install $tool)"; exit 1; }
done

# No systemd here: cgroupfs manager and file-backed events.
podman=(podman --cgroup-manager=cgroupfs --events-backend=file)

if ! "${podman[@]}" image exists "$base"; then
  mkdir -p "$cache"
  tarball=$cache/debian-bookworm-minbase.tar
  if [[ ! -s $tarball ]]; then
    rootfs=$(mktemp -d /var/tmp/tapio-debootstrap.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap --variant=minbase bookworm (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" >"$cache/debootstrap.log" 2>&1 ||
      { log "debootstrap failed, see $cache/debootstrap.log"; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  log "importing $tarball as $base"
  "${podman[@]}" import --change 'CMD ["/bin/bash"]' "$tarball" "$base" >/dev/null
fi
[[ $base_only -eq 1 ]] && { log "base image $base ready"; exit 0; }

log "building $tag from $repo/Dockerfile (jobs=$jobs)"
"${podman[@]}" build --network=host --pull=never --build-arg "JOBS=$jobs" \
  --ulimit nofile=20000:20000 -t "$tag" -f "$repo/Dockerfile" "$repo"
"${podman[@]}" image inspect --format '{{.Id}} {{.Size}}' "$tag" >&2

if [[ -n $archive || -n $containerd_socket ]]; then
  [[ -n $archive ]] || archive=$(mktemp /var/tmp/tapio-image.XXXXXX.tar)
  rm -f "$archive"
  # Save under the fully qualified name the kubelet and containerd resolve the chart's image to
  # (tapio:0.1.0 -> docker.io/library/tapio:0.1.0); podman's own default would be localhost/.
  full=$tag
  [[ $full == */* ]] || full=docker.io/library/$full
  "${podman[@]}" tag "$tag" "$full"
  "${podman[@]}" save --format oci-archive -o "$archive" "$full"
  log "saved $archive ($full)"
  if [[ -n $containerd_socket ]]; then
    ctr -a "$containerd_socket" -n k8s.io images import "$archive"
    log "imported $full into containerd at $containerd_socket (namespace k8s.io)"
  fi
fi
