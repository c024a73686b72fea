#!/usr/bin/env bash
# One command for the whole benchmark: builds Release into build-bench/, then
# runs bench/harness.py (mlpc sweep, PyTorch and C references, AOT latency).
#   bench/run.sh [--quick] [--sizes 200x32,...] [--no-references]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmake -S "$ROOT" -B "$ROOT/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$ROOT/build-bench" --target mlpc >/dev/null
exec /usr/bin/python3 "$ROOT/bench/harness.py" --mlpc "$ROOT/build-bench/tools/mlpc" "$@"
