#!/usr/bin/env bash
# Inference speed of `mlpc compile` output (issue 5), next to the JIT and PyTorch.
#
# usage: bench/run_aot.sh [--mlpc BIN] [--ckpt CKPT] [--data names.txt] [--seconds S] [--no-torch] [--no-jit]
#   --mlpc     the mlpc binary (default: build/tools/mlpc)
#   --ckpt     a makemore checkpoint (default: makemore.safetensors, then out/makemore.safetensors;
#              make one with `mlpc train examples/makemore.mlp --out makemore.safetensors`)
#   --data     names.txt (default: data/names.txt, then /work/shared/data/names.txt)
#   --seconds  time per measurement (default 2)
#
# Builds bench/build/aot/{makemore.o,makemore.h,aot_latency} and prints one JSON
# line per implementation:
#   mlpc-aot  bench/aot_latency.c: single-row latency (dependent calls, median
#             over batches of 256), and rows/s over the train-sized split in one call
#   jit       `mlpc bench`: the JIT's eval over the train split (512-row calls,
#             unfolded BatchNorm, including the loss), as rows/s
#   pytorch   bench/aot_torch_latency.py: the same folded network, one thread
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
MLPC="$ROOT/build/tools/mlpc"
CKPT=""
DATA=""
SECONDS_PER=2
TORCH=1
JIT=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mlpc) MLPC="$2"; shift 2 ;;
    --ckpt) CKPT="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --seconds) SECONDS_PER="$2"; shift 2 ;;
    --no-torch) TORCH=0; shift ;;
    --no-jit) JIT=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$CKPT" ]]; then
  for c in "$ROOT/makemore.safetensors" "$ROOT/out/makemore.safetensors"; do
    [[ -f "$c" ]] && { CKPT="$c"; break; }
  done
fi
if [[ -z "$DATA" ]]; then
  for c in "$ROOT/data/names.txt" /work/shared/data/names.txt; do
    [[ -f "$c" ]] && { DATA="$c"; break; }
  done
fi
[[ -x "$MLPC" ]] || { echo "no mlpc binary at $MLPC; build it or pass --mlpc" >&2; exit 1; }
[[ -f "$CKPT" ]] || { echo "no checkpoint; pass --ckpt (mlpc train examples/makemore.mlp --out makemore.safetensors)" >&2; exit 1; }
[[ -f "$DATA" ]] || { echo "names.txt not found; pass --data PATH" >&2; exit 1; }

OUT="$BENCH/build/aot"
mkdir -p "$OUT"
"$MLPC" compile "$ROOT/examples/makemore.mlp" --weights "$CKPT" -o "$OUT/makemore.o"
cc -O2 -DMLPC_MODEL_HEADER='"makemore.h"' -I"$OUT" "$BENCH/aot_latency.c" "$OUT/makemore.o" \
   -o "$OUT/aot_latency"
"$OUT/aot_latency" "$DATA" "$SECONDS_PER"

if [[ $JIT == 1 ]]; then
  "$MLPC" bench "$ROOT/examples/makemore.mlp" --data "$DATA" --steps 100 --reps 5 |
    /usr/bin/python3 -c 'import json, sys
b = json.loads(sys.stdin.read())
ms = b["eval_train_split_ms_median"]
print(json.dumps({"impl": "jit", "rows": b["eval_rows"], "rows_per_call": 512,
                  "all_rows_ms_median": round(ms, 3),
                  "rows_per_s": round(b["eval_rows"] / (ms / 1e3)),
                  "note": "ModelRuntime::loss: unfolded BatchNorm, plus the loss"}))'
fi
if [[ $TORCH == 1 ]]; then
  /usr/bin/python3 "$BENCH/aot_torch_latency.py" "$CKPT" "$DATA" "$SECONDS_PER"
fi
