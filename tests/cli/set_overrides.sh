# --set on dims and train settings: the lowered IR's shapes and the errors.
. "$SRC/tests/cli/lib.sh"
model=$SRC/examples/makemore.mlp

"$MLPC" emit "$model" --emit=ir --set H=7 --set T=5 --set E=3 --set N=4 >ir.txt
grep -qF 'input X : i32[4, 5]' ir.txt || fail "X not [4, 5]: $(head -3 ir.txt)"
grep -qF 'param C : f32[27, 3]' ir.txt || fail "C not [27, 3]"
grep -qF 'param W1 : f32[15, 7] = (/ (* randn (/ 5 3)) (sqrt (* 5 3)))' ir.txt ||
  fail "W1 or its initialiser did not follow T*E: $(grep W1 ir.txt)"
grep -qF 'param W2 : f32[7, 27]' ir.txt || fail "W2 not [7, 27]"

expect_error "'Q' is not a dim or train setting of model 'makemore'" check "$model" --set Q=3
expect_error "the model's dims are T=3 E=10 H=200 N=batch" check "$model" --set Q=3
expect_error "--set H=abc: 'abc' must be a positive integer" check "$model" --set H=abc
expect_error "dim V is bound to the dataset's vocabulary" check "$model" --set V=5
expect_error "--set sgd=lr x: expected learning rate after 'lr'" check "$model" --set "sgd=lr x"
expect_error "--set expects NAME=VALUE" train "$model" --set H
# Shapes that disagree: the lowering error at the model's line, then the dims.
expect_error "broken_dim.mlp:16:36: error: matmul shapes do not match" check "$SRC/tests/cli/broken_dim.mlp" --set D=5
expect_error "with --set D=5 the model's dims are T=3 E=2 D=5 H=16 N=batch" \
  check "$SRC/tests/cli/broken_dim.mlp" --set D=5
"$MLPC" check "$SRC/tests/cli/broken_dim.mlp" --set D=8 --set E=8 --set T=1 || fail "consistent dims rejected"
echo ok
