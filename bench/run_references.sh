#!/usr/bin/env bash
# Reference timings of the makemore-MLP training step: hand-written C and
# PyTorch (manual backward and autograd), single thread, sweep over (H, B).
#
# usage: bench/run_references.sh [--out FILE] [--data names.txt] [--reps R]
#                                [--rep-seconds S] [--malloc tuned|default|both]
#                                [--impls c,dnnl,manual,autograd] [--max-wait S]
#                                [--quiet CORES] [--retries K] [--retry-above CORES]
#                                [--threads N] [HxB ...]
#   default sweep: H in {64,200,512,1024} x B in {32,256}
#   default out:   bench/results/references.jsonl (one JSON line per run)
#   e.g.           bench/run_references.sh 200x32 1024x256
#
# C build flags: -O3 -march=native, deliberately WITHOUT -ffast-math (the step
# must keep IEEE float semantics, like the compiled step it is compared to; as a
# consequence tanhf/expf stay scalar glibc calls).  Shapes are baked in with
# -DHIDDEN/-DBATCH, one binary per sweep point, in bench/build/.
#
# c-dnnl: bench/c_reference/makemore_step_dnnl.c, the same step with its six
# matmuls by oneDNN's dnnl_sgemm (one thread), -Ofast -march=native; built only
# if oneDNN is installed (apt-get install -y libdnnl-dev), else skipped.
#
# PyTorch runs with /usr/bin/python3 (Debian torch 1.13), torch.set_num_threads(N)
# (--threads N, default 1).
# "--malloc both" (default) runs each PyTorch mode twice: with glibc malloc
# tuned (no page-fault churn, the fair baseline) and with glibc defaults; see
# bench/pytorch_step.py.
#
# The driver waits for the machine to be quiet before each measurement and
# records the CPU used by other processes during it ("others_cores").
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"

OUT="$BENCH/results/references.jsonl"
DATA=""
EXTRA=()
SIZES=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --reps|--rep-seconds|--malloc|--impls|--max-wait|--quiet|--retries|--retry-above|--threads) EXTRA+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *x*) SIZES+=("$1"); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ ${#SIZES[@]} -eq 0 ]]; then
  SIZES=(64x32 64x256 200x32 200x256 512x32 512x256 1024x32 1024x256)
fi
if [[ -z "$DATA" ]]; then
  for c in "$ROOT/data/names.txt" /work/shared/data/names.txt; do
    [[ -f "$c" ]] && { DATA="$c"; break; }
  done
fi
[[ -f "$DATA" ]] || { echo "names.txt not found; pass --data PATH" >&2; exit 1; }

BUILD="$BENCH/build"
mkdir -p "$BUILD"
CFLAGS="-O3 -march=native -std=c99"   # no -ffast-math, on purpose
echo "building C reference ($CFLAGS) ..."
for s in "${SIZES[@]}"; do
  H="${s%x*}"; B="${s#*x}"
  gcc $CFLAGS -DHIDDEN="$H" -DBATCH="$B" -o "$BUILD/makemore_step_H${H}_B${B}" \
      "$BENCH/c_reference/makemore_step.c" -lm
done
if [[ -f /usr/include/dnnl.h || -f /usr/include/oneapi/dnnl/dnnl.h ]]; then
  echo "building oneDNN C reference (-Ofast -march=native, dnnl_sgemm) ..."
  for s in "${SIZES[@]}"; do
    H="${s%x*}"; B="${s#*x}"
    gcc -Ofast -march=native -fopenmp -DHIDDEN="$H" -DBATCH="$B" \
        -o "$BUILD/makemore_step_dnnl_H${H}_B${B}" "$BENCH/c_reference/makemore_step_dnnl.c" -ldnnl -lm
  done
else
  echo "oneDNN not installed (apt-get install -y libdnnl-dev): no c-dnnl reference"
fi

SIZE_LIST="$(IFS=,; echo "${SIZES[*]}")"
exec python3 "$BENCH/run_references.py" --sizes "$SIZE_LIST" --data "$DATA" \
     --out "$OUT" --build "$BUILD" "${EXTRA[@]+"${EXTRA[@]}"}"
