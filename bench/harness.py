#!/usr/bin/env python3
"""The benchmark harness (issue 6): one command, one process sequence, one table.

usage: bench/run.sh [--quick] [--sizes 64x32,...] [--no-references]

In order, on this machine:
  1. mlpc training step, µs/step (median of 5 reps after warm-up), for
     examples/makemore.mlp and a sweep H x batch (model variants of
     makemore.mlp written to a temp dir), plus JIT compile time and the
     full-train-split eval time (`mlpc bench`);
  2. the same step in PyTorch eager (manual backward and autograd, one
     thread) and in the hand-written C reference (gcc -O3 -march=native),
     via bench/run_references.py;
  3. AOT single-row forward latency (bench/run_aot.sh, if present);
  4. a full `mlpc train examples/makemore.mlp` (200k steps): wall time, final
     losses and the peak RSS of the process (wait4's ru_maxrss);
  5. `mlpc bench examples/makemore.mlp --profile`: each node's share of the step.
Prints a table (mlpc/PyTorch and mlpc/C ratios, GFLOP/s against the peak) and
writes bench/results/harness.json.

Peak FLOP/s is measured, not looked up: bench/peak/peak_fma.c runs twelve
independent chains of 16-lane f32 FMAs on one core (throughput-bound), which is
what the core retires at the clock it really runs at (on Zen 5: 2 FMA pipes x
16 lanes x 2 flops = 64 flops/cycle at ~3.5 GHz, not the nominal "cpu MHz" of
/proc/cpuinfo). Matmul FLOPs per step: 6*B*H*(T*E + V)
(forward, and both backward matmuls, of both layers; bench/flops.py).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from flops import matmul_flops  # noqa: E402


def measured_peak_gflops(tmp):
    exe = os.path.join(tmp, "peak_fma")
    subprocess.run(["cc", "-O2", "-march=native", os.path.join(HERE, "peak/peak_fma.c"), "-o", exe],
                   check=True)
    out = subprocess.run([exe], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)["peak_gflops"]


def train_makemore(mlpc, data, tmp):
    """Full training run; returns metrics plus the process's peak RSS in MB."""
    metrics = os.path.join(tmp, "train_metrics.json")
    p = subprocess.Popen([mlpc, "train", "examples/makemore.mlp", "--data", data, "--metrics", metrics,
                          "--out", os.path.join(tmp, "makemore.safetensors"), "--samples", "0"],
                         cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"harness: mlpc train failed (status {status})")
    rec = json.load(open(metrics))
    rec["peak_rss_mb"] = usage.ru_maxrss / 1024.0
    return rec


def find_data():
    for c in [os.path.join(ROOT, "data/names.txt"), os.environ.get("MLPC_DATA", ""),
              os.path.join(ROOT, "../shared/data/names.txt")]:
        if c and os.path.isdir(c):
            c = os.path.join(c, "names.txt")
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    raise SystemExit("harness: names.txt not found (run scripts/setup.sh)")


def model_variant(tmp, hidden, batch):
    src = open(os.path.join(ROOT, "examples/makemore.mlp")).read()
    src = re.sub(r"dim H = \d+", f"dim H = {hidden}", src)
    src = re.sub(r"batch \d+", f"batch {batch}", src)
    path = os.path.join(tmp, f"makemore_H{hidden}_B{batch}.mlp")
    with open(path, "w") as f:
        f.write(src)
    return path


def mlpc_bench(mlpc, model, data, steps):
    out = subprocess.run([mlpc, "bench", model, "--data", data, "--steps", str(steps), "--reps", "5"],
                         check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64x32,64x256,200x32,200x256,512x32,512x256,1024x32,1024x256")
    ap.add_argument("--quick", action="store_true", help="fewer steps (noisier)")
    ap.add_argument("--no-references", action="store_true")
    ap.add_argument("--mlpc", default=os.path.join(ROOT, "build-bench/tools/mlpc"))
    ap.add_argument("--out", default=os.path.join(HERE, "results/harness.json"))
    args = ap.parse_args()
    data = find_data()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        peak = measured_peak_gflops(tmp)
        print(f"measured peak: {peak:.1f} GFLOP/s (one core, f32 FMA)", flush=True)
        for hidden, batch in sizes:
            flops = matmul_flops(hidden, batch)[0]
            steps = max(200, int(2e5 / max(1.0, flops / 1e6))) // (4 if args.quick else 1)
            rec = mlpc_bench(args.mlpc, model_variant(tmp, hidden, batch), data, steps)
            rec.update(hidden=hidden, flops=flops)
            rows.append(rec)
            print(f"mlpc H={hidden} B={batch}: {rec['us_per_step_median']:.2f} us/step, "
                  f"compile {rec['compile_ms']:.0f} ms", flush=True)

    refs = {}
    if not args.no_references:
        ref_file = os.path.join(HERE, "results/references_harness.jsonl")
        if os.path.exists(ref_file):
            os.remove(ref_file)
        subprocess.run([os.path.join(HERE, "run_references.sh"), "--out", ref_file, "--data", data,
                        "--malloc", "tuned", "--retries", "1"] + [f"{h}x{b}" for h, b in sizes],
                       check=True)
        for line in open(ref_file):
            r = json.loads(line)
            refs[(r["impl"], r["hidden"], r["batch"])] = r["us_per_step_median"]

    with tempfile.TemporaryDirectory() as tmp:
        train = train_makemore(args.mlpc, data, tmp)
    # Where makemore's step spends its time (per-node cycle counters).
    p = subprocess.run([args.mlpc, "bench", "examples/makemore.mlp", "--data", data, "--steps", "5000",
                        "--reps", "1", "--profile"], check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, cwd=ROOT)
    profile_table = p.stderr.splitlines()
    profile = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1]).get("profile")

    aot = None
    aot_script = os.path.join(HERE, "run_aot.sh")
    if os.path.exists(aot_script):
        p = subprocess.run([aot_script, "--mlpc", args.mlpc, "--no-jit"], stdout=subprocess.PIPE, text=True)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        aot = [json.loads(l) for l in lines] if p.returncode == 0 and lines else None

    print()
    print(f"peak: {peak:.0f} GFLOP/s per core, measured (bench/peak/peak_fma.c)")
    header = f"{'H':>5} {'B':>4} {'mlpc us':>9} {'GFLOP/s':>8} {'%peak':>6} {'C us':>9} {'torch us':>9} " \
             f"{'vs C':>6} {'vs torch':>8} {'compile ms':>10}"
    print(header)
    for r in rows:
        h, b, us = r["hidden"], r["batch"], r["us_per_step_median"]
        c = refs.get(("c-O3", h, b))
        t = refs.get(("pytorch-manual", h, b))
        ta = refs.get(("pytorch-autograd", h, b))
        torch_best = min(x for x in [t, ta] if x) if (t or ta) else None
        gf = r["flops"] / us / 1e3
        r.update(gflops=gf, c_us=c, torch_manual_us=t, torch_autograd_us=ta,
                 speedup_vs_c=(c / us if c else None), speedup_vs_torch=(torch_best / us if torch_best else None))
        print(f"{h:>5} {b:>4} {us:>9.2f} {gf:>8.1f} {100 * gf / peak:>5.0f}% "
              f"{(c or 0):>9.1f} {(torch_best or 0):>9.1f} "
              f"{(c / us if c else 0):>5.1f}x {(torch_best / us if torch_best else 0):>7.1f}x "
              f"{r['compile_ms']:>10.0f}")
    mm = next((r for r in rows if r["hidden"] == 200 and r["batch"] == 32), None)
    if mm:
        print(f"\nmakemore (H=200, B=32): {mm['us_per_step_median']:.2f} us/step, compile "
              f"{mm['compile_ms']:.0f} ms, full train-split eval {mm['eval_train_split_ms_median']:.1f} ms")
    for rec in aot or []:
        print(f"AOT / inference: {json.dumps(rec)}")
    print()
    print("\n".join(profile_table[:14]))
    print()
    print(f"mlpc train examples/makemore.mlp ({train['steps']} steps): train {train['train_loss']:.4f} / "
          f"val {train['val_loss']:.4f}, {train['us_per_step']:.2f} us/step over the run, "
          f"peak RSS {train['peak_rss_mb']:.1f} MB")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"peak_gflops": peak, "rows": rows, "aot": aot, "train": train, "makemore_profile": profile},
                  f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
