#!/usr/bin/env python3
"""One thread against two, as a user runs them: separate `mlpc bench` processes
with `--threads 1` and `--threads 2`, alternated, with bench/peak/cross_core.c
before and after each pair, so that every ratio comes with the distance between
the two CPUs it was measured at. Pairs are grouped by that distance: "near" when
a cache line moved in under --near-ns at both ends (the CPUs share a cache),
"far" when it took longer at both ends, "changed" otherwise (dropped: the state
moved during the pair). On a VM whose vCPUs move between those states, as the
2-core Zen 5 guest of 2026-12-02 did within minutes, this is how PERFORMANCE.md's
thread figures were taken.

    bench/thread_pairs.py [--mlpc build-bench/tools/mlpc] [--pairs 6] [--seconds 0]
                          [--model "examples/wavenet.mlp --steps 1000"] ...

--seconds N keeps going for N seconds (pairs in every state), --pairs is per
model otherwise. Prints one line per pair and the medians per model and state;
writes nothing. Timing only, never a test.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_MODELS = [
    "examples/makemore.mlp --set H=1024 --set batch=256 --steps 300",
    "examples/wavenet.mlp --steps 1000",
    "examples/makemore.mlp --set H=512 --set batch=128 --steps 1000",
]


def step_us(mlpc, model, threads, reps):
    out = subprocess.run([mlpc, "bench"] + model.split() + ["--threads", str(threads), "--reps", str(reps)],
                         check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])["us_per_step_median"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlpc", default=os.path.join(ROOT, "build-bench/tools/mlpc"))
    ap.add_argument("--model", action="append", help="model file and bench options (repeatable)")
    ap.add_argument("--pairs", type=int, default=6, help="pairs per model (without --seconds)")
    ap.add_argument("--seconds", type=float, default=0, help="run for this long instead")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--near-ns", type=float, default=100.0)
    args = ap.parse_args()
    if not os.path.exists(args.mlpc):
        sys.exit(f"thread_pairs: no mlpc at {args.mlpc} (bench/run.sh builds it, or pass --mlpc)")
    models = args.model or DEFAULT_MODELS
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "cross_core")
        subprocess.run(["cc", "-O2", "-pthread", os.path.join(HERE, "peak/cross_core.c"), "-o", exe],
                       check=True)

        def distance():
            p = subprocess.run([exe, "--rounds", "5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
            if p.returncode != 0 or not p.stdout.strip():
                sys.exit("thread_pairs: cross_core cannot run here (one CPU?)")
            return json.loads(p.stdout.strip().splitlines()[-1])["median_ns"]

        end = time.time() + args.seconds
        done = 0
        while (time.time() < end) if args.seconds else done < args.pairs:
            for model in models:
                before = distance()
                one, two = step_us(args.mlpc, model, 1, args.reps), step_us(args.mlpc, model, 2, args.reps)
                after = distance()
                near = (before < args.near_ns, after < args.near_ns)
                state = "near" if all(near) else "far" if not any(near) else "changed"
                print(f"{state:7s} {before:6.1f} -> {after:6.1f} ns  {model}: 1 thread {one:9.1f} us, "
                      f"2 threads {two:9.1f} us, {one / two:.2f}x", flush=True)
                if state != "changed":
                    results.setdefault((model, state), []).append(one / two)
            done += 1
    print("\nmedian speedup of 2 threads over 1 (pairs), by the CPUs' distance:")
    for (model, state), ratios in sorted(results.items()):
        print(f"  {state:4s} {model}: {statistics.median(ratios):.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} pairs)")


if __name__ == "__main__":
    main()
