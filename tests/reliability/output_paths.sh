#!/usr/bin/env bash
# Every output path is checked before any work: a missing directory, or a
# file where a directory should be, is an error at once (issue 18, point 3).
#   output_paths.sh MLPC SOURCE_DIR
needs_names=0 # every command fails before it would read names.txt
. "$(dirname "$0")/common.sh"
touch "$work/file"
expect_error() { # expected message, then the command
  local expected="$1"
  shift
  local out
  out="$("$@" 2>&1)" && fail "succeeded: $*"
  grep -qF -- "$expected" <<<"$out" || fail "expected '$expected' from: $*; got: $out"
  # Nothing was trained, compiled or read before the error.
  ! grep -q "mlpc: training" <<<"$out" || fail "checked only after training started: $*"
}
for flag in --out --metrics --log --stats; do
  expect_error "$flag: cannot write '$work/nodir/f': the directory '$work/nodir' does not exist" \
    "$mlpc" train "$model" --data "$names" --steps 10 --samples 0 "$flag" "$work/nodir/f"
  expect_error "$flag: cannot write '$work/model': it is a directory" \
    "$mlpc" train "$model" --data "$names" --steps 10 --samples 0 "$flag" "$work/model"
done
# The weights file does not exist: the output path is checked first.
missing="$work/missing.safetensors"
expect_error "-o: cannot write '$work/nodir/m.o'" \
  "$mlpc" compile "$model" --weights "$missing" -o "$work/nodir/m.o"
expect_error "-o: cannot write '$work/file/x.txt': '$work/file' is not a directory" \
  "$mlpc" emit "$model" --emit=ir -o "$work/file/x.txt"
expect_error "-o: cannot write '$work/nodir/g.safetensors'" \
  "$mlpc" grad "$model" --weights "$missing" --batch "$missing" -o "$work/nodir/g.safetensors"
expect_error "-o: cannot write to the directory '$work/file/plots': '$work/file' is not a directory" \
  "$mlpc" plot "$missing" -o "$work/file/plots"
[ "$(entries "$work")" = "file model " ] || fail "stray files: $(entries "$work")"
echo "output paths: all checked before any work"
