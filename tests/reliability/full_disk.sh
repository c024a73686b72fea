#!/usr/bin/env bash
# A write that fails after training loses nothing (issue 18, point 3):
# training into a full file system saves the checkpoint, metrics and stats to
# fallback files in $TMPDIR, says where, exits 1 and leaves no temporary
# files; the saved checkpoint is byte for byte the one an identical run writes
# to a healthy disk. The full file system is a 64 KiB tmpfs, filled up, in a
# private mount namespace (unshare -rm); where that is not allowed the write
# failure is injected with a file size limit instead (ulimit -f), which also
# makes every fallback fail: then the message must say the result is lost.
#   full_disk.sh MLPC SOURCE_DIR
. "$(dirname "$0")/common.sh"
train=("$mlpc" train "$model" --data "$names" --steps 300 --samples 0)

# The oracle: the same run on a healthy disk.
mkdir "$work/ref"
"${train[@]}" --out "$work/ref/x.safetensors" --metrics "$work/ref/m.json" \
  --log "$work/ref/log.csv" --stats "$work/ref/s.json" >/dev/null 2>"$work/ref.err" ||
  fail "reference run failed: $(cat "$work/ref.err")"
losses() { grep -E '"(train|val|test)_loss"' "$1"; }

full_disk() {
  mkdir "$work/full" "$work/tmp"
  local outputs=(--out "$work/full/x.safetensors" --metrics "$work/full/m.json"
                 --log "$work/full/log.csv" --stats "$work/full/s.json")
  # Inside the namespace: mount, fill, run, list what is left on the full disk.
  unshare -rm bash -c '
    work="$1"; shift
    mount -t tmpfs -o size=64k mlpc-full "$work/full" || exit 90
    dd if=/dev/zero of="$work/full/filler" bs=4k 2>/dev/null
    TMPDIR="$work/tmp" "$@" >"$work/full.out" 2>"$work/full.err"
    rc=$?
    (cd "$work/full" && ls -A | tr "\n" " ") >"$work/full.ls"
    exit $rc' _ "$work" "${train[@]}" "${outputs[@]}"
  local rc=$?
  [ $rc -ne 90 ] || fail "could not mount a tmpfs in the namespace"
  local err
  err="$(cat "$work/full.err")"
  [ $rc -eq 1 ] || fail "exit status $rc on a full disk, expected 1: $err"
  grep -q "No space left on device" <<<"$err" || fail "no ENOSPC reported: $err"
  local saved
  for what in checkpoint:x.recovered-*.safetensors metrics:m.recovered-*.json stats:s.recovered-*.json; do
    saved=$(ls "$work/tmp/"${what#*:} 2>/dev/null) || fail "no fallback file for the ${what%%:*}: $err"
    grep -qF "saved the ${what%%:*} to '$saved' instead" <<<"$err" ||
      fail "the message does not say where the ${what%%:*} went: $err"
  done
  grep -qF "cannot write log '$work/full/log.csv': No space left on device; the log is incomplete" \
    <<<"$err" || fail "the incomplete log is not reported: $err"
  cmp "$work/ref/x.safetensors" "$work/tmp/"x.recovered-*.safetensors ||
    fail "the saved checkpoint differs from the reference run's"
  cmp "$work/ref/s.json" "$work/tmp/"s.recovered-*.json ||
    fail "the saved stats differ from the reference run's"
  [ "$(losses "$work/ref/m.json")" = "$(losses "$work/tmp/"m.recovered-*.json)" ] ||
    fail "the saved metrics differ from the reference run's"
  # The full disk holds the filler and the (empty) streamed log, no temporaries.
  [ "$(cat "$work/full.ls")" = "filler log.csv " ] || fail "left on the full disk: $(cat "$work/full.ls")"
  [ "$(ls "$work/tmp" | wc -l)" -eq 3 ] || fail "stray files in \$TMPDIR: $(entries "$work/tmp")"
  echo "full disk: checkpoint, metrics and stats saved to $work/tmp, exit 1"
}

# Every write of a file over 16 KiB fails (EFBIG), in place and in both
# fallback directories: the checkpoint is lost, and the message says so.
size_limit() {
  mkdir "$work/lim" "$work/tmp2"
  (trap '' XFSZ; ulimit -f 16; TMPDIR="$work/tmp2" exec "${train[@]}" --out "$work/lim/x.safetensors") \
    >/dev/null 2>"$work/lim.err"
  local rc=$?
  local err
  err="$(cat "$work/lim.err")"
  [ $rc -eq 1 ] || fail "exit status $rc with writes failing, expected 1: $err"
  grep -qF "the checkpoint is lost: no fallback file could be written either" <<<"$err" ||
    fail "the lost checkpoint is not reported: $err"
  [ -z "$(entries "$work/lim")$(entries "$work/tmp2")" ] ||
    fail "stray files: $(entries "$work/lim") / $(entries "$work/tmp2")"
  [ "$(entries "$work/model")" = "makemore.mlp " ] || fail "stray files next to the model"
  echo "size limit: write failures reported, nothing left behind"
}

if unshare -rm true 2>/dev/null; then
  full_disk
else
  echo "unshare -rm is not permitted here: the full disk is simulated with ulimit -f only"
fi
size_limit
