#!/usr/bin/env bash
# The whole test suite (README's test command; .ci/run runs exactly that), in
# three parts (README "Reliability"):
#   1. Release build, every CTest entry;
#   2. AddressSanitizer + UndefinedBehaviorSanitizer (no suppressions): mlpc,
#      the unit tests and the three fuzz targets, built as plain executables
#      that replay every fuzz corpus and regression input (fuzz.replay.*), and
#      every CTest entry that needs nothing else (all but the aot_* tests,
#      which link C programs against objects mlpc emits);
#   3. no test may be skipped: names.txt is always there in CI, so a skipped
#      test (CTest's "did not run") fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
no_skips() {
  if grep -q "tests did not run" "$1"; then
    sed -n '/tests did not run/,$p' "$1"
    echo "ci: FAILED: tests were skipped (see above); in CI every test must run" >&2
    exit 1
  fi
}
minutes() { awk -v s=$((SECONDS - start)) 'BEGIN { printf "%.1f", s / 60 }'; }

echo "ci: [1/2] Release build, the whole suite"
cmake -S . -B build-tests -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-tests && ctest --test-dir build-tests --output-on-failure -j2 | tee "$logs/release.log" ||
  { echo "ci: FAILED: the Release suite" >&2; exit 1; }
no_skips "$logs/release.log"
echo "ci: release suite passed after $(minutes) min"

echo "ci: [2/2] ASan + UBSan: unit tests, mlpc's tests and the fuzz corpus replay"
cmake -S . -B build-asan -G Ninja -DMLPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-asan --target mlpc mlpc_unit_tests fuzz_check fuzz_safetensors fuzz_dataset
ctest --test-dir build-asan --output-on-failure -j2 -LE aot | tee "$logs/asan.log"
no_skips "$logs/asan.log"
grep -h "^replayed" build-asan/Testing/Temporary/LastTest.log | sed 's/^/ci: /' || true
echo "ci: passed in $(minutes) min"
