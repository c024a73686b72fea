# mlpc lr-find: the schedule in its CSV against the closed form
# lr_k = 10^(log10 lo + k (log10 hi - log10 lo) / (K - 1)), the JSON for
# scripts, and a PNG.
. "$SRC/tests/cli/lib.sh"
need_data
need_program gnuplot
model=$SRC/examples/makemore.mlp
"$MLPC" lr-find "$model" --set H=16 --steps 41 --lo 1e-4 --hi 1e-0 --json -o lr.png >out.json
expect_png lr.png
[ "$(wc -l <lr.csv)" -eq 42 ] || fail "lr.csv has $(wc -l <lr.csv) lines, expected 42"
awk -F, 'NR > 1 {
  want = 10 ^ (-4 + $1 * 4 / 40)
  if ($2 / want > 1 + 1e-6 || $2 / want < 1 - 1e-6) { print "step " $1 ": lr " $2 " != " want; bad = 1 }
} END { exit bad }' lr.csv || fail "lr column is not the closed form"
python3 - <<'PY' || fail "bad JSON: $(cat out.json)"
import json
d = json.load(open("out.json"))
assert 1e-4 <= d["suggested_lr"] <= 1.0, d
PY
expect_error "0 < lo < hi" lr-find "$model" --lo 1 --hi 0.5
expect_error "at least 2 steps" lr-find "$model" --steps 1
echo ok
