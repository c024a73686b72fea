#!/usr/bin/env bash
# Regenerates tools/mlpc.symbol-order.gz: the functions `mlpc` executes on its
# main jobs (check, train, eval, sample, compile for the host and a cross
# target, emit asm), in order of first execution. lld places them first in the
# executable so the code mlpc runs sits in a few MB instead of being spread
# over LLVM's 59 MB of text (see MLPC_STATIC_LLVM in CMakeLists.txt).
#
# usage: scripts/gen_symbol_order.sh [BUILD_DIR]   (default: build)
# Needs valgrind (callgrind) and a names file; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/tools/mlpc
OUT=tools/mlpc.symbol-order.gz
NAMES=""
for candidate in data/names.txt "${MLPC_DATA:-}" "${MLPC_DATA:+$MLPC_DATA/names.txt}" ../shared/data/names.txt; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then NAMES=$candidate; break; fi
done
[ -n "$NAMES" ] || { echo "gen_symbol_order: no names.txt (run scripts/setup.sh)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "gen_symbol_order: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A small names file keeps the (interpreted) evaluation passes short; the code
# paths are the same as on the full file.
head -n 2000 "$NAMES" > "$tmp/names.txt"

n=0
profile() {
  n=$((n + 1))
  echo "gen_symbol_order: mlpc $*" >&2
  valgrind --tool=callgrind --demangle=no --compress-strings=no --dump-instr=no \
    --callgrind-out-file="$tmp/cg.$n" "$BIN" "$@" > /dev/null 2>&1
}
M=examples/makemore.mlp
profile check $M
profile train $M --data "$tmp/names.txt" --steps 50 --samples 2 --out "$tmp/m.safetensors"
profile eval $M --data "$tmp/names.txt" --weights "$tmp/m.safetensors"
profile sample $M --weights "$tmp/m.safetensors" -n 2
profile compile $M --weights "$tmp/m.safetensors" -o "$tmp/host.o"
profile compile $M --weights "$tmp/m.safetensors" -o "$tmp/arm.o" --target aarch64-linux-gnu
profile emit $M --emit=asm

# Function names in order of first appearance over the runs, keeping only
# symbols defined in the executable (callgrind also lists libc's).
nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u > "$tmp/defined"
for i in $(seq 1 $n); do
  sed -n 's/^c\{0,1\}fn=//p' "$tmp/cg.$i"
done | awk '!seen[$0]++' | awk 'NR==FNR {defined[$0]=1; next} ($0 in defined)' "$tmp/defined" - | gzip -9 -n > "$OUT"
echo "gen_symbol_order: wrote $OUT ($(gzip -dc "$OUT" | wc -l) functions)" >&2
