# --threads and --vector-bits from the command line: the same losses for 1, 2
# and 3 threads (the oracle is the one-thread run; tests/unit/test_threads.cpp
# compares every parameter bit), and clear errors for bad values.
. "$SRC/tests/cli/lib.sh"
model=$SRC/examples/makemore.mlp
need_data

for n in 1 2 3; do
  "$MLPC" train "$model" --steps 200 --samples 0 --no-test --threads $n --data "$MLPC_DATA" \
    >out$n.txt 2>err$n.txt || fail "train --threads $n failed: $(cat err$n.txt)"
  grep -q "on $n thread" err$n.txt || fail "--threads $n not reported: $(tail -1 err$n.txt)"
done
cmp -s out1.txt out2.txt || fail "2 threads changed the losses: $(diff out1.txt out2.txt)"
cmp -s out1.txt out3.txt || fail "3 threads changed the losses: $(diff out1.txt out3.txt)"
# auto (the default) at batch 256, 17.5 MFLOP: a team of 2 on two cores, each
# step on it or on one thread by measurement (runtime/ThreadChoice.h; 120
# steps include both): the same checkpoint, byte for byte, as one thread, and
# the choice reported.
for t in 1 auto; do
  "$MLPC" train "$model" --set batch=256 --steps 120 --samples 0 --no-test --threads $t \
    --out b256_$t.safetensors --data "$MLPC_DATA" >b256_$t.txt 2>b256_$t.err ||
    fail "train --threads $t at batch 256 failed: $(cat b256_$t.err)"
done
cmp -s b256_1.safetensors b256_auto.safetensors || fail "auto changed the trained parameters"
if [ "$(nproc)" -ge 2 ]; then
  grep -q "on auto: 2 threads for [0-9]*% of the steps, 1 for the rest" b256_auto.err ||
    fail "auto's choice not reported: $(grep us/step b256_auto.err)"
fi

expect_error "--threads must be auto or a number from 1 to 256 (got '0')" train "$model" --threads 0
expect_error "--threads must be auto or a number from 1 to 256 (got 'many')" bench "$model" --threads many
expect_error "--vector-bits must be 128, 256 or 512 (got '300')" train "$model" --vector-bits 300
expect_error "--vector-bits applies to inference objects" compile "$model" --train -o m.o --vector-bits 256
"$MLPC" bench "$model" --steps 20 --reps 1 --threads 1 --vector-bits 256 --data "$MLPC_DATA" >bench.json ||
  fail "bench --vector-bits 256 failed"
grep -q '"vector_bits":256' bench.json || fail "bench did not report 256-bit vectors: $(cat bench.json)"
grep -q '"threads":1' bench.json || fail "bench did not report 1 thread"
# Fixed parts (--shares, a diagnostic): reported as the team's fractions;
# bad lists refused. (Any parts give the same bits: tests/unit/test_threads.cpp.)
"$MLPC" bench "$model" --steps 20 --reps 1 --threads 2 --shares 3,1 --data "$MLPC_DATA" >shares.json ||
  fail "bench --shares 3,1 failed"
/usr/bin/python3 -c '
import json
s = json.load(open("shares.json"))["shares"]
assert len(s) == 2 and abs(s[0] - 0.75) < 1e-3 and abs(s[1] - 0.25) < 1e-3, s
' || fail "shares not reported: $(cat shares.json)"
expect_error "--shares needs --threads N with N of 2 or more, and one part per thread (got '1,1')" bench "$model" --shares 1,1
expect_error "--shares needs 2 parts, one per thread (got '1,2,3')" bench "$model" --threads 2 --shares 1,2,3
expect_error "--shares takes non-negative numbers separated by commas (got '1,-1')" bench "$model" --threads 2 --shares 1,-1
expect_error "--shares needs a part above zero (got '0,0')" bench "$model" --threads 2 --shares 0,0
# One thread against two, alternated in one process: both series and the ratio.
expect_error "--compare-threads must be a number from 2 to 256 (got '1')" bench "$model" --compare-threads 1
"$MLPC" bench "$model" --steps 10 --reps 3 --compare-threads 2 --data "$MLPC_DATA" \
  >compare.json 2>compare.txt || fail "bench --compare-threads 2 failed: $(cat compare.txt)"
grep -q 'threads 1 -> 2: ' compare.txt || fail "no speedup line: $(cat compare.txt)"
/usr/bin/python3 -c '
import json
c = json.load(open("compare.json"))["compare_threads"]
assert c["threads"] == 2 and c["rounds"] == 3, c
assert len(c["us_per_step_one_thread"]) == 3 and len(c["us_per_step_threads"]) == 3, c
assert c["speedup_median"] > 0, c
' || fail "compare_threads lacks its series: $(cat compare.json)"
# The per-node profile of parallel code: one time per thread and node (x86 only).
if [ "$(uname -m)" = x86_64 ]; then
  "$MLPC" bench "$model" --steps 20 --reps 1 --threads 2 --profile --data "$MLPC_DATA" \
    >profile.json 2>profile.txt || fail "bench --profile --threads 2 failed: $(cat profile.txt)"
  grep -q '"profile_threads":2' profile.json || fail "the profile is not of 2 threads"
  grep -q 'thread1' profile.txt || fail "no thread 1 column: $(head -3 profile.txt)"
  grep -q 'wait1' profile.txt || fail "no wait column of thread 1: $(head -3 profile.txt)"
  /usr/bin/python3 -c '
import json, sys
rows = json.load(open("profile.json"))["profile"]
assert rows and all(len(r["us_per_step_by_thread"]) == 2 for r in rows), rows
# The barrier waits, counted apart, are part of the node time of each thread.
for r in rows:
  waits, times = r["barrier_wait_us_by_thread"], r["us_per_step_by_thread"]
  assert len(waits) == 2 and all(0 <= w <= t * 1.001 + 1e-3 for w, t in zip(waits, times)), r
' || fail "profile rows lack two per-thread times, or waits beyond them"
fi
echo ok
