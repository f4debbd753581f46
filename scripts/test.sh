#!/usr/bin/env bash
# The one command that installs every dependency, builds infergate and runs all of its
# tests (unit, integration on 127.0.0.1, fuzz corpus replay, then the integration tests
# again under ASan and UBSan: scripts/sanitize.sh) on a fresh Debian 12 machine. CI
# (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/check-format.sh
# Unit tests in parallel; integration tests one at a time, since each starts real
# processes whose timings share the machine's cores.
ctest --test-dir build --output-on-failure -L unit -j2
ctest --test-dir build --output-on-failure -L integration -j1
# The integration suite again, under AddressSanitizer and UBSan, in build-asan/.
bash scripts/sanitize.sh
echo "test.sh: all tests passed in $(( $(date +%s) - start ))s"
