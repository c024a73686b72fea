# A sweep killed with SIGKILL mid-run leaves no training process behind and,
# started again, completes with a consistent results table and no
# half-written file.
. "$SRC/tests/cli/lib.sh"
need_data
model=$SRC/examples/makemore.mlp
args=(sweep "$model" --set E=4 --grid H=24,32,40 --steps 150000 --jobs 2 --out sw)
"$MLPC" "${args[@]}" >/dev/null 2>first.txt &
sweep=$!
for _ in $(seq 200); do   # until both first runs are training
  [ "$(find sw -name train.log 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.05
done
sleep 0.3
kill -9 "$sweep"
wait "$sweep" 2>/dev/null || true
finished=$(find sw -name status.json | wc -l)
[ "$finished" -lt 3 ] || fail "every run finished before the kill: the test did not test anything"
sleep 0.5
if pgrep -f "$PWD/sw/" >/dev/null; then fail "training processes survived the sweep: $(pgrep -af "$PWD/sw/")"; fi
[ ! -f sw/results.csv ] || fail "results written by a killed sweep"
"$MLPC" "${args[@]}" >table.txt 2>second.txt || fail "restarted sweep: $(cat second.txt)"
[ "$(grep -c ',ok,' sw/results.csv)" -eq 3 ] || fail "$(cat sw/results.csv)"
[ -z "$(find sw -name '*.tmp*')" ] || fail "temporary files left: $(find sw -name '*.tmp*')"
for d in sw/H=*; do
  "$MLPC" eval "$model" --weights "$d/checkpoint.safetensors" --split val >/dev/null ||
    fail "$d/checkpoint.safetensors does not load"
done
echo ok
