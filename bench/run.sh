#!/usr/bin/env bash
# One command for the whole benchmark: builds Release into build-bench/, then
# runs bench/harness.py (mlpc sweep, PyTorch, C and oneDNN C references, the
# matmul nodes against dnnl_sgemm, AOT latency); see bench/README.md.
#   bench/run.sh [--quick] [--sizes 200x32,...] [--no-references] [--makemore-only]
#                [--threads N] [--rounds R] [--jit-runs N]
# The references are benchmark-only, never build or test dependencies of mlpc:
#   apt-get install -y libdnnl-dev python3-torch
# (without libdnnl-dev the oneDNN columns are left out; PyTorch is required
# unless --no-references.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmake -S "$ROOT" -B "$ROOT/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$ROOT/build-bench" --target mlpc >/dev/null
# The in-process kernel-vs-dnnl_sgemm comparison exists only where oneDNN is installed.
if cmake --build "$ROOT/build-bench" --target help | grep -q mlpc_matmul_bench; then
  cmake --build "$ROOT/build-bench" --target mlpc_matmul_bench >/dev/null
fi
exec /usr/bin/python3 "$ROOT/bench/harness.py" --mlpc "$ROOT/build-bench/tools/mlpc" "$@"
