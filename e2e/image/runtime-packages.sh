#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries the given binaries load, one per
# line, sorted: the runtime stage of the Dockerfile installs exactly these.
# Usage: e2e/image/runtime-packages.sh BINARY...
set -euo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 BINARY..." >&2; exit 2; }
libs=$(for bin in "$@"; do ldd "$bin"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
for lib in $libs; do
  # usrmerge: ldd may name /lib/... while dpkg registered /usr/lib/... (or the reverse).
  rel=${lib#/usr}
  pkg=$(dpkg -S "$rel" 2>/dev/null || dpkg -S "/usr$rel" 2>/dev/null ||
    dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true)
  if [[ -z $pkg ]]; then
    echo "runtime-packages: no Debian package owns $lib" >&2
    exit 1
  fi
  echo "${pkg%%:*}"
done | sort -u
