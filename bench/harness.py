#!/usr/bin/env python3
"""The benchmark harness (issues 6, 15): one command, one process sequence, one table.

usage: bench/run.sh [--quick] [--sizes 64x32,...] [--no-references] [--makemore-only]
                    [--threads N] [--rounds R]

In order, on this machine:
  0. the host: CPU model (/proc/cpuinfo), LLVM's CPU name (llc -version), the
     measured single-core peak (bench/peak/peak_fma.c, see below);
  1. mlpc training step, µs/step (median of 5 reps after warm-up), for
     examples/makemore.mlp and a sweep H x batch (model variants of
     makemore.mlp written to a temp dir), plus JIT compile time and the
     full-train-split eval time (`mlpc bench`);
  2. the same step in PyTorch eager (manual backward and autograd, --threads
     threads), in the hand-written C reference (gcc -O3 -march=native) and in
     the C step whose matmuls are oneDNN's dnnl_sgemm (-Ofast, one thread;
     if libdnnl-dev is installed), via bench/run_references.py;
  3. AOT single-row forward latency (bench/run_aot.sh, if present);
  4. a full `mlpc train examples/makemore.mlp` (200k steps): wall time, final
     losses and the peak RSS of the process (wait4's ru_maxrss);
  5. `mlpc bench examples/makemore.mlp --profile`: each node's share of the step,
     and each matmul node beside dnnl_sgemm on the same shape (bench/matmul_nodes.py);
  6. makemore side by side: mlpc, c-dnnl, c-O3, PyTorch, interleaved over
     --rounds rounds (bench/makemore_ab.py): the ratios the issue's targets name.
Prints the tables (FLOP floor and % of peak next to each figure) and writes
bench/results/harness.json.

Peak FLOP/s is measured, not looked up: bench/peak/peak_fma.c sweeps register-
only FMA loops over vector widths and 4-24 independent chains on one core and
keeps the best, which is what the core retires at the clock it really runs at
(e.g. 2 FMA pipes x 16 lanes x 2 flops = 64 flops/cycle at ~2.75 GHz on this
Sapphire Rapids VM, not the nominal "cpu MHz" of /proc/cpuinfo). The FLOP floor
of a figure is FLOP / (peak x threads it used); %peak = floor / time. Matmul
FLOPs per step: 6*B*H*(T*E + V) (forward, and both backward matmuls, of both
layers; bench/flops.py).

--threads N (default 1): PyTorch's thread count, and mlpc's when `mlpc bench
--help` lists --threads (an mlpc without it runs one thread; the harness says
so). The C references always run one thread.
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
import host  # noqa: E402
import makemore_ab  # noqa: E402
import matmul_nodes  # noqa: E402
from flops import matmul_flops  # noqa: E402


def threads_args(mlpc, command, threads):
    """["--threads", N] if `mlpc COMMAND --help` lists --threads, else []."""
    return ["--threads", str(threads)] if host.mlpc_has_flag(mlpc, command, "--threads") else []


def train_makemore(mlpc, data, tmp, extra):
    """Full training run; returns metrics plus the process's peak RSS in MB: peak_rss_mb with the
    machine-code cache warm (the full run), peak_rss_cold_mb of a 100-step run that compiled
    (an empty cache directory first). A cold compile touches much of LLVM's code generator, whose
    pages count in RSS (shared, file-backed) and are most of the difference."""
    env = dict(os.environ, MLPC_CACHE_DIR=os.path.join(tmp, "jit-cache"))

    def run(steps_args, metrics):
        p = subprocess.Popen([mlpc, "train", "examples/makemore.mlp", "--data", data, "--metrics", metrics,
                              "--out", os.path.join(tmp, "makemore.safetensors"), "--samples", "0"]
                             + steps_args + extra, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        if status != 0:
            raise SystemExit(f"harness: mlpc train failed (status {status})")
        return usage.ru_maxrss / 1024.0

    cold_mb = run(["--steps", "100"], os.path.join(tmp, "train_metrics_cold.json"))
    metrics = os.path.join(tmp, "train_metrics.json")
    warm_mb = run([], metrics)
    rec = json.load(open(metrics))
    rec["peak_rss_mb"] = warm_mb
    rec["peak_rss_cold_mb"] = cold_mb
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


def mlpc_bench(mlpc, model, data, steps, extra, reps=5):
    out = subprocess.run([mlpc, "bench", model, "--data", data, "--steps", str(steps), "--reps", str(reps)] + extra,
                         check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def run_sweep(args, data, sizes, extra):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for hidden, batch in sizes:
            flops = matmul_flops(hidden, batch)[0]
            steps = max(200, int(2e5 / max(1.0, flops / 1e6))) // (4 if args.quick else 1)
            rec = mlpc_bench(args.mlpc, model_variant(tmp, hidden, batch), data, steps, extra)
            rec.update(hidden=hidden, flops=flops)
            rows.append(rec)
            print(f"mlpc H={hidden} B={batch}: {rec['us_per_step_median']:.2f} us/step, "
                  f"compile {rec['compile_ms']:.0f} ms", flush=True)
    return rows


def run_jit(args, data, extra):
    """The JIT's cold compile of the makemore step over args.jit_runs separate processes: compile_ms
    (what the JIT adds before the first step), first_step_ms (create to the end of the first step, data
    included) and data_ms, each as min / median / max. One run is not a figure on a host whose speed
    moves: the issue's JIT target is read as the median."""
    model = os.path.join(ROOT, "examples/makemore.mlp")
    recs = [mlpc_bench(args.mlpc, model, data, 10, extra, reps=1) for _ in range(args.jit_runs)]
    stats = {}
    for key in ("compile_ms", "first_step_ms", "data_ms"):
        v = sorted(r[key] for r in recs)
        stats[key] = {"min": v[0], "median": statistics.median(v), "max": v[-1]}
    stats["runs"] = len(recs)
    return stats


def run_references(args, data, sizes):
    """{(impl, H, B): us/step} from bench/run_references.sh."""
    refs = {}
    ref_file = os.path.join(HERE, "results/references_harness.jsonl")
    if os.path.exists(ref_file):
        os.remove(ref_file)
    subprocess.run([os.path.join(HERE, "run_references.sh"), "--out", ref_file, "--data", data,
                    "--malloc", "tuned", "--retries", "1", "--threads", str(args.threads)]
                   + [f"{h}x{b}" for h, b in sizes], check=True)
    for line in open(ref_file):
        r = json.loads(line)
        refs[(r["impl"], r["hidden"], r["batch"])] = r["us_per_step_median"]
    return refs


def run_profile(args, data, tmp, runs=3):
    """makemore's per-node profile (one thread; `runs` runs, each node's median, the printed
    table from the run with the median step) and its matmul nodes against dnnl_sgemm."""
    extra = threads_args(args.mlpc, "bench", 1)
    recs = []
    for _ in range(runs):
        p = subprocess.run([args.mlpc, "bench", "examples/makemore.mlp", "--data", data, "--steps", "5000",
                            "--reps", "1", "--profile"] + extra, check=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
        rec = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])
        recs.append((rec.get("profile_step_us", 0), p.stderr.splitlines(), rec.get("profile")))
    recs.sort(key=lambda r: r[0])
    _, table, profile = recs[len(recs) // 2]
    nodes = []
    if profile:
        for row in profile:
            row["us_per_step"] = statistics.median(
                next(r["us_per_step"] for r in prof if r["node"] == row["node"]) for _, _, prof in recs)
        exe = None
        if host.dnnl_available():
            exe = host.build_c(tmp, "dnnl_matmul", "dnnl_matmul.c", ["-O2", "-fopenmp"], ["-ldnnl"])
        kernel_exe = args.matmul_bench if os.path.exists(args.matmul_bench) else None
        nodes = matmul_nodes.compare(args.mlpc, "examples/makemore.mlp", profile, exe, ROOT, kernel_exe)
    return table, profile, nodes


def print_sweep(rows, refs, peak, threads, mlpc_threads, sweep_ab=None):
    """The sweep table; adds the reference figures and ratios to rows. 'ab' is mlpc against the
    oneDNN C step from interleaved runs of the same size (makemore_ab.sweep_vs_dnnl), the ratio
    to trust on a machine whose speed drifts between the sweep and the references."""
    sweep_ab = sweep_ab or {}
    print(f"sweep: us/step, median of 5 reps; floor = matmul FLOP / (peak x threads), "
          f"mlpc {mlpc_threads} thread(s), torch {threads}, C one")
    print(f"{'H':>5} {'B':>4} {'MFLOP':>6} {'floor us':>8} {'mlpc us':>9} {'%peak':>6} {'dnnl us':>8} "
          f"{'%peak':>6} {'C us':>8} {'torch us':>9} {'vs dnnl':>7} {'vs C':>6} {'vs torch':>8} "
          f"{'compile ms':>10} {'ab vs dnnl':>10}")
    for r in rows:
        h, b, us = r["hidden"], r["batch"], r["us_per_step_median"]
        c, d = refs.get(("c-O3", h, b)), refs.get(("c-dnnl", h, b))
        t = refs.get(("pytorch-manual", h, b))
        ta = refs.get(("pytorch-autograd", h, b))
        torch_best = min(x for x in [t, ta] if x) if (t or ta) else None
        mt = r.get("threads", mlpc_threads)
        floor = r["flops"] / (peak * mt * 1e3)
        gf = r["flops"] / us / 1e3
        r.update(gflops=gf, floor_us=floor, pct_peak=100 * floor / us, c_us=c, dnnl_us=d,
                 torch_manual_us=t, torch_autograd_us=ta, speedup_vs_c=(c / us if c else None),
                 speedup_vs_dnnl=(d / us if d else None),
                 speedup_vs_torch=(torch_best / us if torch_best else None))

        def opt(x, fmt, w, suffix=""):
            return f"{x:>{w}{fmt}}{suffix}" if x else f"{'-':>{w + len(suffix)}}"
        dpct = f"{100 * r['flops'] / (peak * 1e3) / d:>5.0f}%" if d else f"{'-':>6}"
        print(f"{h:>5} {b:>4} {r['flops'] / 1e6:>6.2f} {floor:>8.2f} {us:>9.2f} {r['pct_peak']:>5.0f}% "
              f"{opt(d, '.1f', 8)} {dpct} {opt(c, '.1f', 8)} {opt(torch_best, '.1f', 9)} "
              f"{opt(d and d / us, '.2f', 6, 'x')} {opt(c and c / us, '.1f', 5, 'x')} "
              f"{opt(torch_best and torch_best / us, '.1f', 7, 'x')} {r['compile_ms']:>10.0f} "
              f"{opt(sweep_ab.get((h, b), {}).get('mlpc_vs_dnnl'), '.2f', 9, 'x')}")
        if (h, b) in sweep_ab:
            r["ab_vs_dnnl"] = sweep_ab[(h, b)]


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64x32,64x256,200x32,200x256,512x32,512x256,1024x32,1024x256")
    ap.add_argument("--quick", action="store_true", help="fewer steps and rounds (noisier)")
    ap.add_argument("--no-references", action="store_true", help="mlpc only: no C, oneDNN or PyTorch")
    ap.add_argument("--makemore-only", action="store_true",
                    help="only the host, makemore's profile and matmul nodes, and the side by side (~1 min)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for mlpc (if it has --threads) and PyTorch (default 1)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved rounds of the makemore side-by-side (default 3, --quick 2)")
    ap.add_argument("--mlpc", default=os.path.join(ROOT, "build-bench/tools/mlpc"))
    ap.add_argument("--matmul-bench", default=None,
                    help="bench/matmul_bench.cpp's binary (default: beside --mlpc's build, "
                         "bench/mlpc_matmul_bench; built by bench/run.sh where oneDNN is installed)")
    ap.add_argument("--jit-runs", type=int, default=10,
                    help="cold compiles of the makemore step, separate processes (0: none)")
    ap.add_argument("--out", default=os.path.join(HERE, "results/harness.json"))
    args = ap.parse_args()
    if args.threads < 1:
        raise SystemExit("harness: --threads must be >= 1")
    args.mlpc = os.path.abspath(args.mlpc)
    if args.matmul_bench is None:
        args.matmul_bench = os.path.join(os.path.dirname(os.path.dirname(args.mlpc)), "bench",
                                         "mlpc_matmul_bench")
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.sizes = [] if args.makemore_only else [tuple(int(x) for x in s.split("x"))
                                                   for s in args.sizes.split(",")]
    return args


def run_aot(mlpc, ckpt):
    """bench/run_aot.sh on the checkpoint the full train run wrote."""
    aot_script = os.path.join(HERE, "run_aot.sh")
    if not os.path.exists(aot_script) or not os.path.exists(ckpt):
        return None
    p = subprocess.run([aot_script, "--mlpc", mlpc, "--no-jit", "--ckpt", ckpt], stdout=subprocess.PIPE, text=True)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return [json.loads(l) for l in lines] if p.returncode == 0 and lines else None


def measure(args, data, bench_threads):
    """Runs every stage; returns the results harness.json records (res["peak_gflops"] is the best peak)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_rec = host.measured_peak(tmp)
        cross = [host.cross_core_ns(tmp)]
        writes = [host.cross_core_writes_us(tmp)]
    busy = host.busy_cores()
    res = {"host": {"cpu_model": host.cpu_model(), "llvm_cpu": host.llvm_cpu(), "threads": args.threads,
                    "mlpc_has_threads_flag": bool(bench_threads), "busy_cores_at_start": busy}}
    if busy:
        print(f"warning: {busy} other task(s) running: on a small or shared machine a build beside the "
              f"harness slows the measured code by up to ~40%; the in-process figures (matmul kernels vs "
              f"dnnl_sgemm) and the interleaved rounds are the robust ones", flush=True)
    print(f"host: {res['host']['cpu_model']} (LLVM: {res['host']['llvm_cpu']}); measured peak: "
          f"{peak_rec['peak_gflops']:.1f} GFLOP/s (one core, f32 FMA, {peak_rec.get('width', '?')} x "
          f"{peak_rec['chains']} chains)", flush=True)
    res["rows"] = run_sweep(args, data, args.sizes, bench_threads)
    res["jit"] = run_jit(args, data, bench_threads) if args.jit_runs else None
    res["refs"] = run_references(args, data, args.sizes) if args.sizes and not args.no_references else {}
    res["sweep_ab"] = {}
    if args.sizes and not args.no_references and host.dnnl_available():
        print(f"sweep against the oneDNN C step, interleaved ({args.rounds} rounds per size):", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            res["sweep_ab"] = makemore_ab.sweep_vs_dnnl(
                args.mlpc, data, args.sizes, lambda h, b: model_variant(tmp, h, b),
                lambda h, b: max(50, int(2e4 / max(1.0, matmul_flops(h, b)[0] / 1e6))), bench_threads,
                args.rounds)
    res["train"], res["aot"], ab, res["dnnl_check"] = None, None, None, None
    with tempfile.TemporaryDirectory() as tmp:
        if not args.makemore_only:
            res["train"] = train_makemore(args.mlpc, data, tmp, threads_args(args.mlpc, "train", args.threads))
            res["aot"] = run_aot(args.mlpc, os.path.join(tmp, "makemore.safetensors"))
        res["profile_table"], res["makemore_profile"], res["matmul_nodes"] = run_profile(args, data, tmp)
        if not args.no_references:
            print(f"makemore side by side ({args.rounds} interleaved rounds):", flush=True)
            ab = makemore_ab.run(args.mlpc, data, tmp, args.threads, bench_threads, args.rounds, args.quick)
            res["dnnl_check"] = makemore_ab.dnnl_check(tmp, data)
    mlpc_rec = (ab or {}).get("mlpc") or next((r for r in res["rows"] if (r["hidden"], r["batch"]) == (200, 32)),
                                              {})
    res["host"]["mlpc_threads"] = mlpc_rec.get("threads", args.threads if bench_threads else 1)
    if "vector_bits" in mlpc_rec:
        res["host"]["mlpc_vector_bits"] = mlpc_rec["vector_bits"]
    # The peak again: a run disturbed by other processes only under-reports, so keep the best.
    with tempfile.TemporaryDirectory() as tmp:
        again = host.measured_peak(tmp)
        cross.append(host.cross_core_ns(tmp))
        writes.append(host.cross_core_writes_us(tmp))
    # Thread speedups follow it, and on a VM it moves (bench/peak/cross_core.c).
    res["host"]["cross_core_ns"] = [c["median_ns"] for c in cross if c]
    # ... and so does what a write of lines the other core has read costs (cross_core_writes.c).
    res["host"]["cross_core_writes_us_64kb"] = [w["us"] for w in writes if w]
    runs = [peak_rec["peak_gflops"], again["peak_gflops"]]
    res["peak"] = dict(again if runs[1] > runs[0] else peak_rec, runs_gflops=runs)
    res["peak_gflops"] = max(runs)
    res["ab"] = ab
    return res


def report(args, res, bench_threads):
    """Prints the tables (adding floors and ratios to res); returns what harness.json records."""
    hostinfo, peak, rows = res["host"], res["peak_gflops"], res["rows"]
    print()
    print(f"host: {hostinfo['cpu_model']}, LLVM CPU {hostinfo['llvm_cpu']}, threads {args.threads}"
          + (f", mlpc vector width {hostinfo['mlpc_vector_bits']} bits" if "mlpc_vector_bits" in hostinfo else ""))
    print(f"peak: {peak:.0f} GFLOP/s per core, measured (bench/peak/peak_fma.c, best of a run at the start "
          f"and one at the end: {res['peak']['runs_gflops']}; by width {json.dumps(res['peak'].get('by_width', {}))})")
    if hostinfo.get("cross_core_ns"):
        print(f"cross-core: a cache line moves between CPUs 0 and 1 in {hostinfo['cross_core_ns']} ns one way "
              f"(bench/peak/cross_core.c at the start and the end; it bounds what a second thread gains)")
    for w in hostinfo.get("cross_core_writes_us_64kb", []):
        print(f"cross-core writes of 64 KB, us: {w['own']} own lines, {w['modified']} after the other CPU "
              f"wrote them, {w['shared']} after it read them ({w['streaming']} with streaming stores; "
              f"bench/peak/cross_core_writes.c)")
    if rows:
        print_sweep(rows, res["refs"], peak, args.threads, args.threads if bench_threads else 1,
                    res.get("sweep_ab"))
    mm = next((r for r in rows if r["hidden"] == 200 and r["batch"] == 32), None)
    if mm:
        print(f"\nmakemore (H=200, B=32): {mm['us_per_step_median']:.2f} us/step, compile "
              f"{mm['compile_ms']:.0f} ms, full train-split eval {mm['eval_train_split_ms_median']:.1f} ms")
    jit = res["jit"]
    if jit:
        c, f, d = jit["compile_ms"], jit["first_step_ms"], jit["data_ms"]
        print(f"JIT, makemore step, {jit['runs']} cold runs: compile_ms {c['min']:.1f} / {c['median']:.1f} / "
              f"{c['max']:.1f} (min / median / max), first_step_ms {f['min']:.1f} / {f['median']:.1f} / "
              f"{f['max']:.1f}, data_ms median {d['median']:.1f}")
    for rec in res["aot"] or []:
        print(f"AOT / inference: {json.dumps(rec)}")
    print()
    print("\n".join(res["profile_table"][:14]))
    if res["matmul_nodes"]:
        print()
        print("\n".join(matmul_nodes.table(res["matmul_nodes"], peak)))
    makemore, ab = None, res["ab"]
    if ab:
        print()
        print("\n".join(makemore_ab.summarize(ab, matmul_flops(200, 32)[0], peak)))
        chk = res["dnnl_check"]
        if chk:
            print(f"c-dnnl --check against c-O3's loops, 500 steps: {chk['check']} "
                  f"(max loss difference {chk['max_abs_loss_diff']:.2g})")
        makemore = {"impls": ab, "mlpc_vs_dnnl": ab["c-dnnl"]["mlpc_speedup"] if "c-dnnl" in ab else None,
                    "mlpc_vs_pytorch": ab["pytorch-manual"]["mlpc_speedup"],
                    "mlpc_vs_c": ab["c-O3"]["mlpc_speedup"], "rounds": args.rounds}
    train = res["train"]
    if train:
        print()
        print(f"mlpc train examples/makemore.mlp ({train['steps']} steps): train {train['train_loss']:.4f} / "
              f"val {train['val_loss']:.4f}, {train['us_per_step']:.2f} us/step over the run, "
              f"peak RSS {train['peak_rss_mb']:.1f} MB (machine code from the cache; "
              f"{train['peak_rss_cold_mb']:.1f} MB in a run that compiles it)")
    return {"host": hostinfo, "peak_gflops": peak, "peak": res["peak"], "rows": rows, "aot": res["aot"],
            "train": train, "jit": res["jit"], "makemore_profile": res["makemore_profile"],
            "matmul_nodes": res["matmul_nodes"], "makemore": makemore, "dnnl_check": res["dnnl_check"]}


def main():
    args = parse_args()
    data = find_data()
    bench_threads = threads_args(args.mlpc, "bench", args.threads)
    if args.threads > 1 and not bench_threads:
        print(f"note: this mlpc has no --threads; it runs one thread (PyTorch runs {args.threads})")
    out = report(args, measure(args, data, bench_threads), bench_threads)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
