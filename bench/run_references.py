#!/usr/bin/env python3
"""Driver for bench/run_references.sh (see there for usage).

For every (H, B) sweep point it runs, one after another:
  c-O3                       bench/build/makemore_step_H<H>_B<B>
  c-dnnl                     bench/build/makemore_step_dnnl_H<H>_B<B> (if built)
  pytorch-manual / autograd  /usr/bin/python3 bench/pytorch_step.py
                             (--malloc tuned, and --malloc default if asked)
Each child prints one JSON line; the driver adds
  "steps_per_rep", "reps", "wall_s"           what was run
  "others_cores"                               CPU used by *other* processes
                                               during the run, in cores
                                               (/proc/stat busy time minus the
                                               child's own CPU time, / wall)
  "matmul_flops", "gflops_median"              from bench/flops.py
and appends it to --out.  Before every measurement it waits (up to
--max-wait s) until the rest of the machine is quiet (< --quiet cores busy over
1 s), because concurrent builds on this 2-core box distort timings badly, and
re-runs a measurement (up to --retries times) if other processes still used
more than --retry-above cores during it, keeping the least disturbed run.

N (steps per rep) is chosen per size from a rough cost model so one rep takes
~--rep-seconds; W = max(20, N // 4); R = --reps.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from flops import matmul_flops  # noqa: E402

TORCH_PY = "/usr/bin/python3"

# rough single-thread cost model, us/step = fixed + flops / (rate GFLOP/s * 1e3)
COST = {
    "c-O3": (5.0, 7.0),
    "c-dnnl": (5.0, 60.0),
    "pytorch-manual": (350.0, 4.0),
    "pytorch-autograd": (450.0, 4.0),
}


def proc_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait, quiet):
    t_end = time.time() + max_wait
    while True:
        b0 = proc_busy_s()
        time.sleep(1.0)
        busy = proc_busy_s() - b0
        if busy < quiet or time.time() >= t_end:
            return busy


def run_one(cmd):
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0 = proc_busy_s()
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    busy = proc_busy_s() - b0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    rec = json.loads(line)
    rec["wall_s"] = round(wall, 3)
    rec["others_cores"] = round(max(0.0, busy - child) / wall, 3)
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64x32,64x256,200x32,200x256,512x32,512x256,1024x32,1024x256",
                    help="comma-separated HxB list")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--build", required=True, help="dir with makemore_step_H*_B* binaries")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rep-seconds", type=float, default=0.3)
    ap.add_argument("--malloc", choices=["tuned", "default", "both"], default="both",
                    help="PyTorch glibc malloc setting(s) to run")
    ap.add_argument("--impls", default="c,dnnl,manual,autograd")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    ap.add_argument("--max-wait", type=float, default=60.0)
    ap.add_argument("--quiet", type=float, default=0.25)
    ap.add_argument("--retries", type=int, default=2,
                    help="re-run a measurement disturbed by other processes up to this often")
    ap.add_argument("--retry-above", type=float, default=0.5,
                    help="others_cores above which a measurement counts as disturbed")
    a = ap.parse_args()

    sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",") if s]
    impls = a.impls.split(",")
    mallocs = ["tuned", "default"] if a.malloc == "both" else [a.malloc]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    out = open(a.out, "w")
    recs = []
    for (H, B) in sizes:
        fl = matmul_flops(H, B)[0]
        jobs = []
        if "c" in impls:
            jobs.append(("c-O3", [os.path.join(a.build, f"makemore_step_H{H}_B{B}"),
                                  "--data", a.data], None))
        dnnl_exe = os.path.join(a.build, f"makemore_step_dnnl_H{H}_B{B}")
        if "dnnl" in impls and os.path.exists(dnnl_exe):
            jobs.append(("c-dnnl", [dnnl_exe, "--data", a.data], None))
        for mode in ("manual", "autograd"):
            if mode in impls:
                for m in mallocs:
                    jobs.append((f"pytorch-{mode}",
                                 [TORCH_PY, os.path.join(HERE, "pytorch_step.py"),
                                  "--mode", mode, "--hidden", str(H), "--batch", str(B),
                                  "--data", a.data, "--malloc", m,
                                  "--threads", str(a.threads)], m))
        for impl, cmd, m in jobs:
            fixed, rate = COST[impl]
            est_us = fixed + fl / (rate * 1e3)
            n = max(10, int(round(a.rep_seconds * 1e6 / est_us)))
            w = max(20, n // 4)
            cmd = cmd + ["--steps", str(n), "--warmup", str(w), "--reps", str(a.reps)]
            rec = None
            for attempt in range(a.retries + 1):
                wait_quiet(a.max_wait, a.quiet)
                r = run_one(cmd)
                r["attempts"] = attempt + 1
                if rec is None or r["others_cores"] < rec["others_cores"]:
                    rec = r
                if r["others_cores"] <= a.retry_above:
                    break
            rec["steps_per_rep"], rec["warmup"], rec["reps"] = n, w, a.reps
            rec["matmul_flops"] = fl
            rec["gflops_median"] = round(fl / (rec["us_per_step_median"] * 1e3), 3)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            recs.append(rec)
            tag = impl + ("" if m is None else f"[{m}]")
            print(f"  H={H:<5d} B={B:<4d} {tag:28s} {rec['us_per_step_median']:10.1f} us/step"
                  f"  (min {rec['us_per_step_min']:.1f}, N={n}, others {rec['others_cores']:.2f} cores)",
                  flush=True)
    out.close()

    # table
    cols = []
    if "c" in impls:
        cols.append(("c-O3", None))
    if "dnnl" in impls and any(r["impl"] == "c-dnnl" for r in recs):
        cols.append(("c-dnnl", None))
    for mode in ("manual", "autograd"):
        if mode in impls:
            for m in mallocs:
                cols.append((f"pytorch-{mode}", m))

    def key(r):
        return (r["impl"], r.get("malloc"))

    by = {(r["hidden"], r["batch"], key(r)): r for r in recs}
    hdr = f"{'H':>5} {'B':>4} {'MFLOP':>7} |" + "".join(
        f" {(c if m is None else c.replace('pytorch-', 'pt-') + '/' + m[0]):>16}" for c, m in cols)
    if "c" in impls and len(cols) > 1:
        hdr += "  | speedup of C vs pt-manual/t"
    print("\nus/step (median of reps); MFLOP = matmul FLOP/step (fwd+bwd)")
    print(hdr)
    print("-" * len(hdr))
    for (H, B) in sizes:
        row = f"{H:>5} {B:>4} {matmul_flops(H, B)[0] / 1e6:>7.2f} |"
        for c, m in cols:
            r = by.get((H, B, (c, m)))
            row += f" {r['us_per_step_median']:>16.1f}" if r else f" {'-':>16}"
        rc = by.get((H, B, ("c-O3", None)))
        rp = by.get((H, B, ("pytorch-manual", "tuned"))) or by.get((H, B, ("pytorch-manual", "default")))
        if rc and rp:
            row += f"  | {rp['us_per_step_median'] / rc['us_per_step_median']:.2f}x"
        print(row)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
