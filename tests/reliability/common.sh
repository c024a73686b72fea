# Shared by the reliability tests: sourced with $1 = mlpc, $2 = the source tree.
# Sets $mlpc, $src, $names (or exits 77, which CTest reports as skipped,
# unless the script set needs_names=0),
# a scratch directory $work removed on exit, a copy of makemore.mlp in
# $work/model/ (so that no fallback ever lands in the source tree), and fail().
set -u
mlpc="$1"
src="$2"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# Looked up like tests/unit/Skip.h: $MLPC_DATA if set, else data/ or ../shared/data/.
names=""
candidates=("$src/data/names.txt" "$src/../shared/data/names.txt")
[ -z "${MLPC_DATA:-}" ] || candidates=("$MLPC_DATA" "$MLPC_DATA/names.txt")
for candidate in "${candidates[@]}"; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then
    names="$candidate"
    break
  fi
done
if [ -z "$names" ] && [ "${needs_names:-1}" = 0 ]; then
  names=/nonexistent/names.txt
elif [ -z "$names" ]; then
  echo "SKIPPED: names.txt not found in \$MLPC_DATA, data/ or ../shared/data/"
  exit 77
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/mlpc-reliability.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir "$work/model"
cp "$src/examples/makemore.mlp" "$work/model/"
model="$work/model/makemore.mlp"
# Lists a directory's entries, hidden ones included, on one line.
entries() { (cd "$1" && ls -A | tr '\n' ' '); }
