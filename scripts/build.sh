#!/usr/bin/env bash
# Configures and builds infergate into build/ (Release, warnings as errors, -j2).
#   scripts/build.sh [extra cmake arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DINFERGATE_WERROR=ON "$@" >/dev/null
cmake --build build -j2
