# Files that are not what a command expects: devices, pipes, a checkpoint
# holding NaN, grids without values, and an image that a failed plot must
# not destroy. Each must give a one-line error (or, for a pipe, be written
# in place) and leave what existed as it was.
. "$SRC/tests/cli/lib.sh"
need_data
model=$SRC/examples/makemore.mlp

# A device has no end: refused before reading (/dev/zero was read until
# memory ran out).
expect_error "not a regular file (a device)" check /dev/zero
expect_error "not a regular file (a device)" eval "$model" --weights /dev/zero
expect_error "not a regular file (a device)" train "$model" --data /dev/zero --set steps=1

# Grids: no values, a value twice, a name twice.
expect_error "--grid H has no values" sweep "$model" --grid 'H=,,' --steps 5 --out sw
expect_error "--grid H lists '50' twice" sweep "$model" --grid 'H=50,50' --steps 5 --out sw
expect_error "--grid H is given twice" sweep "$model" --grid 'H=50' --grid 'H=60' --steps 5 --out sw
[ ! -e sw ] || fail "a refused sweep created its directory"

# A checkpoint written to a pipe goes through the pipe; the pipe stays one
# (renaming a temporary file over it replaced /dev/null with a regular file).
"$MLPC" train "$model" --set H=16 --set steps=5 --samples 0 --out good.safetensors >/dev/null 2>&1
mkfifo pipe
cat pipe >through.safetensors &
reader=$!
"$MLPC" train "$model" --set H=16 --set steps=5 --samples 0 --out pipe >/dev/null 2>&1 ||
  fail "train --out pipe failed"
wait "$reader"
[ -p pipe ] || fail "the pipe was replaced by a regular file"
cmp -s good.safetensors through.safetensors || fail "the pipe did not carry the checkpoint"

# A resumed run appends to its --log instead of starting it over.
"$MLPC" train "$model" --set H=16 --set steps=20 --samples 0 --out r.safetensors --log l.csv >/dev/null 2>&1
"$MLPC" train "$model" --set H=16 --set steps=40 --samples 0 --resume r.safetensors --out r.safetensors \
  --log l.csv >/dev/null 2>&1
[ "$(wc -l <l.csv)" -eq 41 ] || fail "the resumed log has $(wc -l <l.csv) lines, expected 41"
[ "$(grep -c '^step,' l.csv)" -eq 1 ] || fail "the resumed log repeats its header"
[ "$(sed -n 22p l.csv | cut -d, -f1)" = 20 ] || fail "the resumed log does not continue at step 20"

# A NaN in a checkpoint: refused by every command that loads one.
/usr/bin/python3 - <<'PY'
import json, struct
b = open('good.safetensors', 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
data = bytearray(b[8 + n:])
start = h['C']['data_offsets'][0]
data[start:start + 4] = struct.pack('<f', float('nan'))
open('nan.safetensors', 'wb').write(b[:8 + n] + bytes(data))
PY
expect_error "tensor 'C' holds nan at element 0" eval "$model" --set H=16 --weights nan.safetensors
expect_error "tensor 'C' holds nan at element 0" sample "$model" --set H=16 --weights nan.safetensors

# Another names file means another vocabulary: the checkpoint's rows would
# belong to other characters.
tr z - <"$MLPC_DATA" >dash.txt
expect_error 'trained on the vocabulary ".abcdefghijklmnopqrstuvwxyz"' eval "$model" --set H=16 --weights good.safetensors --data dash.txt

# A plot that fails leaves the earlier image as it was.
if command -v gnuplot >/dev/null; then
  "$MLPC" plot-embedding good.safetensors -o keep.png >/dev/null
  expect_png keep.png
  before=$(cksum <keep.png)
  expect_error "'C' holds nan at element 0: nothing to plot" plot-embedding nan.safetensors -o keep.png
  mkdir fake
  printf '#!/bin/sh\n: > keep.png\nexit 1\n' >fake/gnuplot
  chmod +x fake/gnuplot
  PATH="$PWD/fake:$PATH" expect_error "gnuplot failed" plot-embedding good.safetensors -o keep.png
  [ "$(cksum <keep.png)" = "$before" ] || fail "a failed plot changed the earlier image"
fi
echo ok
