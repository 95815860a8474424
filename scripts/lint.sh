#!/usr/bin/env bash
# Formatting and lint, enforced: clang-format (Google base, .clang-format) on every C/C++ source
# in the repo except generated code, and clang-tidy (.clang-tidy) on the agent's own sources using
# the build's compile_commands.json. Usage: scripts/lint.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

mapfile -t sources < <(git ls-files '*.cc' '*.h' '*.c' | grep -v -E '^bpf/vmlinux|/gen/')
bad=()
for f in "${sources[@]}"; do
  [[ -f $f ]] || continue
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "lint: clang-format differs for ${#bad[@]} file(s) (run 'make format'):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi

if [[ -f $build/compile_commands.json ]]; then
  mapfile -t tidy < <(git ls-files 'agent/*.cc' 'cli/*.cc')
  if [[ ${#tidy[@]} -gt 0 ]]; then
    # -quiet: only findings; the checks and WarningsAsErrors come from .clang-tidy.
    findings=$(printf '%s\n' "${tidy[@]}" \
      | xargs -P 2 -n 4 clang-tidy -quiet -p "$build" 2>/dev/null | grep -E 'error:|warning:' || true)
    if [[ -n $findings ]]; then
      echo "$findings" >&2
      echo "lint: clang-tidy findings above" >&2
      exit 1
    fi
  fi
fi
echo "lint: clang-format and clang-tidy clean (${#sources[@]} files)"
