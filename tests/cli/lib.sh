# Shared helpers of the command-line tests (tests/cli/*.sh). CTest runs each
# script with MLPC (the binary), SRC (the source tree) and MLPC_DATA (names.txt)
# set, in a fresh temporary directory. Exit 77 means SKIPPED (SKIP_RETURN_CODE).
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }

need_data() {
  if [ ! -f "${MLPC_DATA:-}" ]; then
    echo "SKIPPED: names.txt not found at '${MLPC_DATA:-}'"
    exit 77
  fi
}

need_program() {
  if ! command -v "$1" >/dev/null; then
    echo "SKIPPED: $1 not on PATH"
    exit 77
  fi
}

# expect_error "substring" mlpc-args...: the command fails with exit 1 and
# its stderr contains the substring.
expect_error() {
  local want=$1; shift
  local rc=0
  "$MLPC" "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" -eq 1 ] || fail "mlpc $* exited $rc, expected 1; stderr: $(cat err.txt)"
  grep -qF -- "$want" err.txt || fail "mlpc $*: stderr lacks '$want': $(cat err.txt)"
}

# A non-empty PNG file (its 8-byte signature).
expect_png() {
  [ -s "$1" ] || fail "$1 missing or empty"
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$1 is not a PNG"
}
