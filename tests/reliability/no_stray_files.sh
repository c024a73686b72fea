#!/usr/bin/env bash
# A training run with no outputs leaves no files behind, on a normal exit and
# on SIGINT (which saves <model>.interrupted.safetensors, by design, and
# nothing else); SIGTERM during periodic checkpointing leaves only --out.
# No temporary files in the working directory, next to the model, in $TMPDIR
# or next to --out (issue 18, point 4).
#   no_stray_files.sh MLPC SOURCE_DIR
. "$(dirname "$0")/common.sh"
mkdir "$work/cwd" "$work/tmp" "$work/out"
export TMPDIR="$work/tmp"
check_clean() { # cwd entries expected, out entries expected
  [ "$(entries "$work/cwd")" = "$1" ] || fail "working directory: '$(entries "$work/cwd")'"
  [ "$(entries "$work/out")" = "$2" ] || fail "output directory: '$(entries "$work/out")'"
  [ -z "$(entries "$work/tmp")" ] || fail "\$TMPDIR: '$(entries "$work/tmp")'"
  [ "$(entries "$work/model")" = "makemore.mlp " ] || fail "next to the model: '$(entries "$work/model")'"
}

(cd "$work/cwd" && "$mlpc" train "$model" --data "$names" --steps 300 >/dev/null 2>&1) ||
  fail "a short run failed"
check_clean "" ""

# Waits until the run in the background has started training, then signals it.
interrupt() { # signal, pid, stderr file
  for _ in $(seq 1200); do # up to 2 minutes (a loaded machine, a sanitizer build)
    grep -q "step " "$3" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "step " "$3" || fail "training did not start: $(cat "$3")"
  kill -"$1" "$2"
  wait "$2"
}
(cd "$work/cwd" && exec "$mlpc" train "$model" --data "$names" --steps 100000000 \
  --log-every 100 >/dev/null 2>"$work/int.err") &
interrupt INT $! "$work/int.err"
rc=$?
[ $rc -eq 130 ] || fail "SIGINT: exit $rc, expected 130: $(cat "$work/int.err")"
check_clean "makemore.interrupted.safetensors " ""
rm "$work/cwd/makemore.interrupted.safetensors"

(cd "$work/cwd" && exec "$mlpc" train "$model" --data "$names" --steps 100000000 \
  --log-every 100 --out "$work/out/x.safetensors" --checkpoint-every 20 >/dev/null 2>"$work/term.err") &
interrupt TERM $! "$work/term.err"
rc=$?
[ $rc -eq 143 ] || fail "SIGTERM: exit $rc, expected 143: $(cat "$work/term.err")"
check_clean "" "x.safetensors "
echo "no stray files: normal exit, SIGINT, SIGTERM with periodic checkpoints"
