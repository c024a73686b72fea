"""makemore's step (examples/makemore.mlp, H=200, B=32) side by side, interleaved (issue 15).

Each round runs, one after the other: `mlpc bench` (with --threads N if this
mlpc has it), the C step with dnnl_sgemm matmuls (c-dnnl, one thread; only if
oneDNN is installed), the hand-written C step (c-O3, one thread) and PyTorch's
manual-backward step (torch.set_num_threads(N), tuned malloc). Every program
reports the median of its own repetitions; the harness takes the median over
rounds. Interleaving spreads the load of this shared machine over all four
instead of over whichever ran while another process was busy.
"""
import json
import os
import statistics
import subprocess

import host

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HIDDEN, BATCH = 200, 32


def last_json(out):
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def jobs(mlpc, data, tmp, threads, mlpc_threads_args, quick):
    """[(impl, threads used, command)] for one round."""
    shape = [f"-DHIDDEN={HIDDEN}", f"-DBATCH={BATCH}"]
    out = [("mlpc", None, [mlpc, "bench", "examples/makemore.mlp", "--data", data, "--steps",
                           "2000" if quick else "5000", "--reps", "5"] + mlpc_threads_args)]
    if host.dnnl_available():
        exe = host.build_c(tmp, "makemore_step_dnnl", "c_reference/makemore_step_dnnl.c",
                           ["-Ofast", "-march=native", "-fopenmp"] + shape, ["-ldnnl", "-lm"])
        out.append(("c-dnnl", 1, [exe, "--data", data, "--steps", "5000", "--warmup", "500"]))
    exe = host.build_c(tmp, "makemore_step", "c_reference/makemore_step.c",
                       ["-O3", "-march=native", "-std=c99"] + shape, ["-lm"])
    out.append(("c-O3", 1, [exe, "--data", data, "--steps", "1000", "--warmup", "200"]))
    out.append(("pytorch-manual", threads,
                ["/usr/bin/python3", os.path.join(HERE, "pytorch_step.py"), "--mode", "manual", "--hidden",
                 str(HIDDEN), "--batch", str(BATCH), "--data", data, "--malloc", "tuned", "--threads",
                 str(threads), "--steps", "300", "--warmup", "100"]))
    return out


def dnnl_check(tmp, data):
    """The dnnl step's losses against the loop reference's, same batches (see its --check)."""
    exe = os.path.join(tmp, "makemore_step_dnnl")
    if not os.path.exists(exe):
        return None
    p = subprocess.run([exe, "--data", data, "--check", "--steps", "500"], stdout=subprocess.PIPE, text=True)
    return last_json(p.stdout)


def run(mlpc, data, tmp, threads, mlpc_threads_args, rounds, quick):
    """{impl: {"us_per_step_median", "us_rounds", "threads", ...}} over `rounds` interleaved rounds."""
    todo = jobs(mlpc, data, tmp, threads, mlpc_threads_args, quick)
    res = {impl: {"us_rounds": [], "threads": t} for impl, t, _ in todo}
    for r in range(rounds):
        # Every other round in reverse order: on this kind of VM a run right
        # after another is often slower than the first of a pair, which would
        # otherwise always favour the implementation listed first.
        for impl, _, cmd in (todo if r % 2 == 0 else todo[::-1]):
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            if p.returncode != 0:
                raise SystemExit(f"harness: {impl} failed:\n{p.stderr}")
            rec = last_json(p.stdout)
            res[impl]["us_rounds"].append(rec["us_per_step_median"])
            if impl == "mlpc":
                # the mlpc JSON may carry the thread count and vector width it chose
                res[impl]["threads"] = rec.get("threads", 1 if not mlpc_threads_args else threads)
                for key in ("vector_bits", "compile_ms", "train_step_compile_ms"):
                    if key in rec:
                        res[impl][key] = rec[key]
        print(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{impl} {res[impl]['us_rounds'][-1]:.1f}" for impl, _, _ in todo) + " us/step", flush=True)
    for v in res.values():
        v["us_per_step_median"] = statistics.median(v["us_rounds"])
    return res


def summarize(res, flops, peak):
    """Adds floor/%peak/ratios to res; returns the printed lines."""
    mlpc_us = res["mlpc"]["us_per_step_median"]
    lines = [f"makemore step (H={HIDDEN}, B={BATCH}), side by side, median of "
             f"{len(res['mlpc']['us_rounds'])} interleaved rounds; {flops / 1e6:.2f} MFLOP (matmuls), "
             f"peak {peak:.0f} GFLOP/s per core",
             f"{'impl':16} {'threads':>7} {'us/step':>9} {'floor us':>9} {'%peak':>6} {'mlpc speedup':>12}"]
    for impl, v in res.items():
        t = v["threads"] or 1
        floor = flops / (peak * t * 1e3)
        us = v["us_per_step_median"]
        v.update(floor_us=floor, pct_peak=100 * floor / us, mlpc_speedup=us / mlpc_us)
        lines.append(f"{impl:16} {t:>7} {us:>9.2f} {floor:>9.2f} {v['pct_peak']:>5.0f}% "
                     f"{v['mlpc_speedup']:>11.2f}x")
    return lines


def sweep_vs_dnnl(mlpc, data, sizes, model_file, steps_for, mlpc_threads_args, rounds):
    """Each sweep size's mlpc step against the oneDNN C step of the same size, interleaved:
    per size, `rounds` rounds of mlpc bench then bench/build/makemore_step_dnnl_H{H}_B{B}
    (built by run_references.sh). The sweep table's two columns come from runs minutes apart;
    these ratios come from runs seconds apart. {(H, B): {"mlpc": [...], "dnnl": [...]}}."""
    out = {}
    for hidden, batch in sizes:
        exe = os.path.join(HERE, "build", f"makemore_step_dnnl_H{hidden}_B{batch}")
        if not os.path.exists(exe):
            continue
        steps = steps_for(hidden, batch)
        rec = {"mlpc": [], "dnnl": []}
        def run_mlpc():
            p = subprocess.run([mlpc, "bench", model_file(hidden, batch), "--data", data, "--steps",
                                str(steps), "--reps", "3"] + mlpc_threads_args, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, cwd=ROOT, check=True)
            rec["mlpc"].append(last_json(p.stdout)["us_per_step_median"])

        def run_dnnl():
            p = subprocess.run([exe, "--data", data, "--steps", str(steps), "--warmup", str(steps // 10)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
            rec["dnnl"].append(last_json(p.stdout)["us_per_step_median"])

        for r in range(rounds):  # alternating which goes first, as in run()
            for job in ((run_mlpc, run_dnnl) if r % 2 == 0 else (run_dnnl, run_mlpc)):
                job()
        rec["mlpc_median"] = statistics.median(rec["mlpc"])
        rec["dnnl_median"] = statistics.median(rec["dnnl"])
        rec["mlpc_vs_dnnl"] = rec["dnnl_median"] / rec["mlpc_median"]
        out[(hidden, batch)] = rec
        print(f"  H={hidden} B={batch}: mlpc {rec['mlpc_median']:.1f}, c-dnnl {rec['dnnl_median']:.1f} us/step "
              f"-> {rec['mlpc_vs_dnnl']:.2f}x", flush=True)
    return out
