#!/usr/bin/env bash
# Installs the Debian packages Tapio needs, and only those missing. Idempotent and quiet when
# nothing is missing. Usage: scripts/install-deps.sh [build|test]
#   build: what `make run` needs (compilers, libraries, bpftool)
#   test:  build + what the tests start for real (containerd, runc, Prometheus, stress-ng, ...)
set -euo pipefail

profile=${1:-build}
build_pkgs=(
  build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
  nlohmann-json3-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev libssl-dev
)
test_pkgs=(
  containerd runc busybox-static stress-ng prometheus python3-grpcio python3-protobuf
  openssl shellcheck clang-format clang-tidy unzip ca-certificates openjdk-17-jre-headless
  memcached
)
pkgs=("${build_pkgs[@]}")
if [[ $profile == test ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
