#!/usr/bin/env bash
# Builds the libFuzzer target for the routing-prefix scanner with clang and runs it.
#   scripts/fuzz.sh [SECONDS]   (default 60)
# New inputs that increase coverage land in build-fuzz/corpus; crashes in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DINFERGATE_FUZZ=ON -DINFERGATE_BUILD_BENCHMARKS=OFF >/dev/null
ninja -C build-fuzz -j2 request_view_fuzz
mkdir -p build-fuzz/corpus
cp -n tests/fuzz/corpus/* build-fuzz/corpus/ 2>/dev/null || true
cd build-fuzz
./tests/fuzz/request_view_fuzz corpus -max_total_time="$seconds" -max_len=4096 \
  -print_final_stats=1
