#!/usr/bin/env bash
# Fails if any C++ source is not clang-format clean (Google style, 100 columns).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format not found; skipping" >&2
  exit 0
fi
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find . -name '*.cc' -o -name '*.h')
clang-format --dry-run -Werror "${files[@]}"
echo "check-format: ${#files[@]} files clean"
