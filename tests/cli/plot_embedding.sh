# mlpc plot-embedding: E = 2 plots the raw table, E > 2 its first two
# principal components (said in the title); both write a PNG.
. "$SRC/tests/cli/lib.sh"
need_data
need_program gnuplot
model=$SRC/examples/makemore.mlp
"$MLPC" train "$model" --set E=2 --set H=16 --set steps=200 --samples 0 --out e2.safetensors 2>/dev/null >/dev/null
"$MLPC" plot-embedding e2.safetensors >out.txt
[ "$(cat out.txt)" = "e2.png" ] || fail "printed $(cat out.txt)"
expect_png e2.png
grep -q "principal" e2.png.gp && fail "E=2 should plot raw coordinates"
grep -q "'\.'\|\"\.\"" e2.png.dat || fail "no '.' label"
[ "$(wc -l <e2.png.dat)" -eq 27 ] || fail "expected 27 labelled points"
"$MLPC" train "$model" --set E=5 --set H=16 --set steps=200 --samples 0 --out e5.safetensors 2>/dev/null >/dev/null
"$MLPC" plot-embedding e5.safetensors -o pca.png >/dev/null
expect_png pca.png
grep -q "first two principal components" pca.png.gp || fail "E=5 title lacks the PCA note"
expect_error "is not a [27, E] f32 tensor" plot-embedding e5.safetensors --param W2
echo ok
