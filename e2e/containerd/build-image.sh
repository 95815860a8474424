#!/usr/bin/env bash
# Builds a one-layer OCI image-layout tarball around one static binary, no registry needed.
# Usage: build-image.sh <source.c> <binary name in image> <image name> <out.tar>
#   e.g. build-image.sh e2e/containerd/pause.c pause docker.io/tapio/pause:e2e /tmp/x/pause.tar
# The image's entrypoint is /<binary name>. Import with:
#   ctr -a SOCK -n k8s.io images import out.tar
set -euo pipefail
src=$1 bin=$2 name=$3 out=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs" "$work/layout/blobs/sha256"
gcc -static -O2 -o "$work/rootfs/$bin" "$src"
strip "$work/rootfs/$bin"
tar -C "$work/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/layer.tar" "$bin"

blob() {  # file -> prints digest hex, stores it as a blob
  local d
  d=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$work/layout/blobs/sha256/$d"
  echo "$d"
}
size() { stat -c %s "$1"; }

layer=$(blob "$work/layer.tar")
layer_size=$(size "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/%s"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tapio e2e build-image.sh"}]}' \
  "$bin" "$layer" > "$work/config.json"
config=$(blob "$work/config.json")
config_size=$(size "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
manifest=$(blob "$work/manifest.json")
manifest_size=$(size "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$name" "${name##*:}" > "$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"
tar -C "$work/layout" --owner=0 --group=0 --numeric-owner -cf "$out" oci-layout index.json blobs
