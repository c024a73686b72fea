#!/usr/bin/env bash
# Runs one fuzzer from a build with -DMLPC_FUZZ=ON (see fuzz/README.md).
#
#   fuzz/run.sh check|safetensors|dataset [SECONDS] [extra libFuzzer flags]
#
# The working corpus lives in $BUILD/fuzz-corpus/<target> (seeded from the
# repository on every run; new inputs stay there, not in the source tree),
# crash/timeout reproducers go to $BUILD/fuzz-artifacts/<target>/, logs to
# $BUILD/fuzz-logs/<target>/ (fuzz-0.log is the job's; libFuzzer writes it
# to the working directory). One job, one worker: the machine is shared; in
# jobs mode libFuzzer keeps fuzzing after a crash, so one run finds several.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build-fuzz}"
target="${1:?usage: fuzz/run.sh check|safetensors|dataset [SECONDS] [flags]}"
seconds="${2:-600}"
shift $(( $# < 2 ? $# : 2 ))

corpus="$BUILD/fuzz-corpus/$target"
artifacts="$BUILD/fuzz-artifacts/$target"
logs="$BUILD/fuzz-logs/$target"
mkdir -p "$corpus" "$artifacts" "$logs"
flags=(-max_total_time="$seconds" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=4096
       -print_final_stats=1 -artifact_prefix="$artifacts/")
case "$target" in
  check)
    cp "$ROOT"/examples/*.mlp "$ROOT"/tests/malformed/*.mlp "$ROOT"/tests/golden/passes/*.mlp "$corpus/"
    flags+=(-max_len=4096 -dict="$ROOT/fuzz/mlp.dict")
    ;;
  safetensors)
    cp "$ROOT"/fuzz/seeds/safetensors/* "$corpus/"
    flags+=(-max_len=8192 -dict="$ROOT/fuzz/safetensors.dict")
    ;;
  dataset)
    cp "$ROOT"/fuzz/seeds/dataset/* "$corpus/"
    flags+=(-max_len=8192)
    ;;
  *) echo "unknown target '$target'" >&2; exit 2 ;;
esac
# UBSan findings abort (the build uses -fno-sanitize-recover); LLVM's own
# shared library is not instrumented, so ODR checks across it are noise.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$logs"
rm -f fuzz-*.log
"$BUILD/fuzz/fuzz_$target" "${flags[@]}" "$@" "$corpus" 2>&1 | tee run.log && rc=0 || rc=$?
# Jobs mode copies each job's fuzz-N.log into run.log: count the job logs.
{ grep -h "stat::number_of_executed_units" fuzz-*.log 2>/dev/null || true; } |
  awk '{ n += $2 } END { print "total executed units:", n + 0 }'
exit "$rc"
