# mlpc sweep: every grid point runs, a failing point is a row with its error
# while the others go on, the results are ranked by val, only the best run's
# test split is evaluated, a rerun skips finished runs, and --emit-jobs +
# --collect give the same table through an external job runner.
. "$SRC/tests/cli/lib.sh"
need_data
model=$SRC/tests/cli/broken_dim.mlp   # D=5 breaks the shape of W1

"$MLPC" sweep "$model" --grid D=6,5 --grid H=8,16 --steps 200 --jobs 2 --out sw \
  >table.txt 2>progress.txt || fail "sweep: $(cat progress.txt)"
for run in D=6_H=8 D=6_H=16 D=5_H=8 D=5_H=16; do
  [ -f "sw/$run/status.json" ] || fail "run $run did not finish"
done
[ "$(wc -l <sw/results.csv)" -eq 5 ] || fail "results.csv: $(cat sw/results.csv)"
[ "$(grep -c ',ok,' sw/results.csv)" -eq 2 ] || fail "expected 2 ok runs: $(cat sw/results.csv)"
[ "$(grep -c ',failed,' sw/results.csv)" -eq 2 ] || fail "expected 2 failed runs"
grep ',failed,' sw/results.csv | grep -q 'matmul' || fail "failed rows lack the error: $(cat sw/results.csv)"
[ -f sw/D=6_H=8/checkpoint.safetensors ] || fail "no checkpoint"
grep -q 'sweep \[4/4\]' progress.txt ||
  fail "no progress lines: $(cat progress.txt)"
python3 - <<'PY' || fail "results.json: $(cat sw/results.json)"
import json
r = json.load(open("sw/results.json"))
runs = r["runs"]
assert len(runs) == 4
ok = [x for x in runs if x["status"] == "ok"]
assert [x["val_loss"] for x in ok] == sorted(x["val_loss"] for x in ok)  # ranked by val
assert runs[0]["status"] == "ok" and runs[0]["config"]["D"] == "6"
assert r["best"]["run"] == runs[0]["run"] and r["best"]["test_loss"] > 0
for x in runs:
    assert set(x["config"]) == {"D", "H"} and "seconds" in x
    assert (x["status"] == "failed") == ("error" in x)
# test is looked at once, for the best run only: no run's metrics hold it
for x in runs:
    if x["status"] == "ok":
        m = json.load(open("sw/%s/metrics.json" % x["run"]))
        assert m["test_loss"] is None, m
PY
grep -q 'best: D=6' table.txt || fail "no best line: $(cat table.txt)"
[ -s sw/results.png ] || [ -z "$(command -v gnuplot)" ] || fail "no results.png"

# A rerun skips the finished runs (their logs are untouched).
before=$(stat -c %Y sw/D=6_H=8/train.log)
sleep 1
"$MLPC" sweep "$model" --grid D=6,5 --grid H=8,16 --steps 200 --jobs 2 --out sw >/dev/null 2>rerun.txt
grep -q '4 finished already, 0 to run' rerun.txt || fail "rerun: $(cat rerun.txt)"
[ "$(stat -c %Y sw/D=6_H=8/train.log)" = "$before" ] || fail "a finished run ran again"
# A different grid into the same directory is refused.
expect_error "belongs to a different sweep" sweep "$model" --grid D=6 --grid H=8 --steps 300 --out sw

# The same sweep through an external job runner.
"$MLPC" sweep "$model" --grid D=6,5 --grid H=8,16 --steps 200 --out ext --emit-jobs jobs.sh 2>/dev/null
[ "$(wc -l <jobs.sh)" -eq 4 ] || fail "jobs.sh: $(cat jobs.sh)"
if command -v parallel >/dev/null; then parallel -j 2 <jobs.sh >/dev/null 2>&1 || true
else bash jobs.sh >/dev/null 2>&1 || true; fi
"$MLPC" sweep --collect ext >collected.txt 2>/dev/null || fail "collect"
cut -d, -f1-6 sw/results.csv >a.csv; cut -d, -f1-6 ext/results.csv >b.csv
cmp -s a.csv b.csv || fail "collected results differ: $(diff a.csv b.csv)"
echo ok
