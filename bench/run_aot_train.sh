#!/usr/bin/env bash
# Training-step speed of `mlpc compile --train` output (issue 16) next to the
# JIT's (`mlpc bench`), on the same machine, interleaved so that load from
# other processes hits both alike.
#
# usage: bench/run_aot_train.sh [--mlpc BIN] [--data names.txt] [--rounds K] [--steps N]
#   --mlpc    the mlpc binary (default: build/tools/mlpc)
#   --data    names.txt (default: data/names.txt, then /work/shared/data/names.txt)
#   --rounds  alternations of the two measurements (default 5)
#   --steps   steps per rep; each measurement is 5 reps (default 5000)
#
# Builds bench/build/aot_train/{makemore.o,makemore.h,aot_train_step}, prints
# one JSON line per measurement, then a summary line: the median over rounds
# of each one's median us/step, the best round of each, and aot / jit ratios.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
MLPC="$ROOT/build/tools/mlpc"
DATA=""
ROUNDS=5
STEPS=5000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mlpc) MLPC="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$DATA" ]]; then
  for c in "$ROOT/data/names.txt" /work/shared/data/names.txt; do
    [[ -f "$c" ]] && { DATA="$c"; break; }
  done
fi
[[ -x "$MLPC" ]] || { echo "no mlpc binary at $MLPC; build it or pass --mlpc" >&2; exit 1; }
[[ -f "$DATA" ]] || { echo "names.txt not found; pass --data PATH" >&2; exit 1; }

OUT="$BENCH/build/aot_train"
mkdir -p "$OUT"
"$MLPC" compile "$ROOT/examples/makemore.mlp" --train --data "$DATA" -o "$OUT/makemore.o"
cc -O2 -DMLPC_MODEL_HEADER='"makemore.h"' -I"$OUT" "$BENCH/aot_train_step.c" "$OUT/makemore.o" \
   -o "$OUT/aot_train_step"

LOG="$OUT/runs.jsonl"
: > "$LOG"
for ((r = 0; r < ROUNDS; ++r)); do
  "$MLPC" bench "$ROOT/examples/makemore.mlp" --data "$DATA" --steps "$STEPS" --reps 5 | tee -a "$LOG"
  "$OUT/aot_train_step" "$DATA" "$STEPS" 5 | tee -a "$LOG"
done
/usr/bin/python3 - "$LOG" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
jit = [r["us_per_step_median"] for r in runs if r["impl"] == "mlpc"]
aot = [r["us_per_step_median"] for r in runs if r["impl"] == "mlpc-aot-train"]
jm, am = statistics.median(jit), statistics.median(aot)
print(json.dumps({"summary": "makemore train step, us (sampling + step)",
                  "jit_median": round(jm, 3), "aot_median": round(am, 3),
                  "jit_best": round(min(jit), 3), "aot_best": round(min(aot), 3),
                  "aot_over_jit_median": round(am / jm, 3),
                  "aot_over_jit_best": round(min(aot) / min(jit), 3)}))
PY
