# A checkpoint records its --set overrides: eval, sample, compile and
# fold-check rebuild the same shapes without repeating them, and a
# contradicting --set is an error naming the missing one.
. "$SRC/tests/cli/lib.sh"
need_data
model=$SRC/examples/makemore.mlp
"$MLPC" train "$model" --set H=12 --set E=2 --set steps=300 --set "lr=0.2, 0.05 after 200" \
  --samples 0 --out c.safetensors >train.txt 2>train.err || fail "train: $(cat train.err)"
"$MLPC" eval "$model" --weights c.safetensors >eval.txt || fail "eval without --set"
# The same checkpoint, the same split: both runs evaluate the calibrated model.
[ "$(grep val train.txt)" = "$(grep val eval.txt)" ] || fail "val differs: $(cat train.txt eval.txt)"
"$MLPC" sample "$model" --weights c.safetensors -n 3 >names.txt || fail "sample without --set"
[ "$(wc -l <names.txt)" -eq 3 ] || fail "sample gave $(wc -l <names.txt) names"
"$MLPC" fold-check "$model" --weights c.safetensors >fold.txt || fail "fold-check without --set"
"$MLPC" compile "$model" --weights c.safetensors -o m.o || fail "compile without --set"
[ -s m.o ] && [ -s m.h ] || fail "compile wrote no object"
expect_error "pass --set H=12" compile "$model" --weights c.safetensors --set H=8 -o n.o
expect_error "pass --set H=12" eval "$model" --weights c.safetensors --set H=8
# --resume keeps the overrides (no --set repeated) and continues the schedule.
"$MLPC" train "$model" --resume c.safetensors --set steps=400 --samples 0 --out d.safetensors \
  >/dev/null 2>resume.err || fail "resume: $(cat resume.err)"
grep -qF 'resuming from c.safetensors at step 300' resume.err || fail "$(cat resume.err)"
echo ok
