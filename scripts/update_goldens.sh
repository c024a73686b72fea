#!/usr/bin/env bash
# Regenerates the golden files from the current build. Review `git diff`
# before committing: a golden file is an assertion, not a snapshot to accept blindly.
set -euo pipefail
cd "$(dirname "$0")/.."
MLPC=${MLPC:-build/tools/mlpc}
mkdir -p tests/golden/examples
for model in examples/*.mlp; do
  stem=$(basename "$model" .mlp)
  for stage in ast ir fused grad infer; do
    "$MLPC" emit "$model" --emit=$stage > tests/golden/examples/$stem.$stage.txt
  done
done
for case in tests/golden/passes/*.mlp; do
  [ -e "$case" ] || continue
  stem=$(basename "$case" .mlp)
  flags=$(head -1 "$case" | sed 's/^# args: *//')
  (cd tests/golden/passes && "../../../$MLPC" emit "$stem.mlp" $flags > "$stem.txt" 2> "$stem.err"; cat "$stem.err" >> "$stem.txt"; rm "$stem.err")
done
for case in tests/malformed/*.mlp; do
  stem=$(basename "$case" .mlp)
  (cd tests/malformed && "../../$MLPC" check "$stem.mlp" 2> "$stem.expected" > /dev/null) || true
done
