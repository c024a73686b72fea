"""Each matmul node of `mlpc bench --profile` beside dnnl_sgemm on the same shape (issue 15).

The profile's rows name a graph node (`node`, the root of one fused loop),
its output type and its ops ("sub <- mul,matmul": the root op, then the ops
fused into its loop), but not the matmul's operand shapes. Those come from
`mlpc emit MODEL --emit=grad`, whose node numbers are the profile's: the
matmuls fused into a row are found by walking the root's operands through
nodes whose op is in the row's fused list and that are not rows themselves.
For a 2-D matmul `%c = matmul %a, %b {transA?, transB?} : f32[M, N]`,
K is a's second dimension (first with transA). bench/dnnl_matmul.c then
times dnnl_sgemm (one thread, alpha 1, beta 0) on each (M, N, K, transposes).

mlpc's time is the instrumented node (its loop, including the fused
elementwise work such as a bias add or the SGD update); dnnl's is the bare
GEMM. "vs dnnl" = dnnl us / mlpc us: >= 1.0 means the node is at least as
fast as dnnl_sgemm. floor = 2*M*N*K / peak (one core).
"""
import json
import re
import subprocess

LINE = re.compile(r"^\s*%(\d+) = (\w+)(.*)$")
TYPE = re.compile(r"\s:\s*\w+\[([\d, ]*)\]")


def parse_graph(text):
    """{id: (op, operand ids, attrs text, shape list or None)} of an --emit=grad listing."""
    nodes = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        rest = m.group(3).split("  ;")[0].rstrip()
        t = TYPE.search(rest)
        shape = [int(x) for x in t.group(1).split(",") if x.strip()] if t else None
        body = rest[:t.start()] if t else rest
        attrs = body[body.find("{"):] if "{" in body else ""
        args = body[:body.find("{")] if "{" in body else body
        nodes[int(m.group(1))] = (m.group(2), [int(x) for x in re.findall(r"%(\d+)", args)], attrs, shape)
    return nodes


def matmul_shape(nodes, nid):
    op, args, attrs, _ = nodes[nid]
    if op != "matmul" or len(args) != 2:
        return None
    a, b = nodes[args[0]][3], nodes[args[1]][3]
    if not a or not b or len(a) != 2 or len(b) != 2:
        return None  # batched matmuls are not compared
    ta, tb = "transA" in attrs, "transB" in attrs
    m, k = (a[1], a[0]) if ta else (a[0], a[1])
    n = b[0] if tb else b[1]
    return (m, n, k, ("T" if ta else "N") + ("T" if tb else "N"))


def fused_matmuls(nodes, row, roots):
    """Matmul ids inside the loop whose root is row["node"]."""
    parts = row["op"].split("<-")
    fused = {parts[0].strip()} | ({s.strip() for s in parts[1].split(",")} if len(parts) > 1 else set())
    if "matmul" not in fused:
        return []
    found, seen, todo = [], set(), [row["node"]]
    while todo:
        nid = todo.pop()
        if nid in seen or nid not in nodes:
            continue
        seen.add(nid)
        op, args, _, _ = nodes[nid]
        if op == "matmul":
            found.append(nid)
        todo += [a for a in args if a in nodes and nodes[a][0] in fused and a not in roots]
    return sorted(found)


def matmul_rows(mlpc, model, profile, cwd, extra_args=()):
    """[(profile row, [(M, N, K, trans), ...])] for the profile rows that contain matmuls."""
    text = subprocess.run([mlpc, "emit", model, "--emit=grad"] + list(extra_args), check=True,
                          stdout=subprocess.PIPE, text=True, cwd=cwd).stdout
    nodes = parse_graph(text)
    roots = {r["node"] for r in profile}
    out = []
    for row in profile:
        ids = fused_matmuls(nodes, row, roots)
        shapes = [matmul_shape(nodes, i) for i in ids]
        if ids and all(shapes):
            out.append((row, shapes))
    return out


def dnnl_times(exe, shapes):
    """{(M, N, K, trans): dnnl_matmul record} for the distinct shapes."""
    distinct = sorted(set(shapes))
    if not distinct:
        return {}
    args = [f"{m}x{n}x{k}:{t}" for m, n, k, t in distinct]
    out = subprocess.run([exe] + args, check=True, stdout=subprocess.PIPE, text=True).stdout
    recs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return {(r["m"], r["n"], r["k"], r["trans"]): r for r in recs}


def kernel_times(exe, shapes):
    """{(M, N, K, trans): matmul_bench record}: mlpc's bare kernel and dnnl_sgemm timed in ONE
    process, interleaved, operands out of L1 as in a step (bench/matmul_bench.cpp). The
    like-for-like comparison on a shared machine whose speed drifts between processes."""
    distinct = sorted(set(shapes))
    if not exe or not distinct:
        return {}
    args = [f"{m}x{n}x{k}:{t}" for m, n, k, t in distinct]
    out = subprocess.run([exe, "--evict-kb", "256"] + args, check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    recs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return {(r["m"], r["n"], r["k"], r["shape"].split(":")[1]): r for r in recs}


def compare(mlpc, model, profile, dnnl_exe, cwd, kernel_exe=None):
    """Rows for harness.json: node, op, shapes, flops, mlpc us (the node in the step, with
    its fused epilogue), dnnl us (separate process), vs dnnl; and with kernel_exe the bare
    kernel against dnnl_sgemm in one process (kernel_us, kernel_dnnl_us, kernel_vs_dnnl)."""
    rows = matmul_rows(mlpc, model, profile, cwd)
    dnnl = dnnl_times(dnnl_exe, [s for _, shapes in rows for s in shapes]) if dnnl_exe else {}
    kern = kernel_times(kernel_exe, [s for _, shapes in rows for s in shapes])
    out = []
    for row, shapes in rows:
        flops = sum(2 * m * n * k for m, n, k, _ in shapes)
        d = [dnnl.get(s) for s in shapes]
        d_us = sum(r["us_median"] for r in d) if d and all(d) else None
        k = [kern.get(s) for s in shapes]
        k_us = sum(r["mlpc_us_min"] for r in k) if k and all(k) else None
        kd_us = sum(r["dnnl_us_min"] for r in k) if k and all(k) else None
        out.append({"node": row["node"], "op": row["op"], "name": row.get("name", ""),
                    "shapes": [f"{m}x{n}x{k}:{t}" for m, n, k, t in shapes], "flops": flops,
                    "mlpc_us": row["us_per_step"], "dnnl_us": d_us,
                    "vs_dnnl": (d_us / row["us_per_step"]) if d_us else None,
                    "kernel_us": k_us, "kernel_dnnl_us": kd_us,
                    "kernel_vs_dnnl": (kd_us / k_us) if k_us else None})
    return out


def table(rows, peak_gflops):
    """The printed table; adds floor_us (one core) to the rows."""
    for r in rows:
        r["floor_us"] = r["flops"] / (peak_gflops * 1e3)
    kernels = any(r.get("kernel_us") for r in rows)
    lines = ["matmul nodes: 'node us' = the node in mlpc bench --profile (median of 3 runs, with its "
             "fused epilogue) vs dnnl_sgemm run in another process; 'kernel us' = the bare mlpc kernel "
             "vs dnnl_sgemm in ONE process, interleaved, operands out of L1 (bench/matmul_bench.cpp, "
             "min of 41 trials): the like-for-like figure on a machine whose speed drifts. One thread, "
             "A/B N = as stored, T = transposed; vs dnnl >= 1.0: mlpc at least as fast",
             f"{'node':>5} {'op':34} {'MxNxK:AB':16} {'node us':>8} {'dnnl us':>8} {'vs dnnl':>8} "
             + (f"{'kernel us':>9} {'dnnl us':>8} {'vs dnnl':>8} " if kernels else "") + f"{'floor us':>8}"]
    opt = lambda v, w, f=".2f", s="": f"{v:>{w - len(s)}{f}}{s}" if v else f"{'-':>{w}}"
    for r in rows:
        line = (f"{'%' + str(r['node']):>5} {r['op'][:34]:34} {','.join(r['shapes']):16} "
                f"{r['mlpc_us']:>8.2f} {opt(r['dnnl_us'], 8)} {opt(r['vs_dnnl'], 8, '.2f', 'x')} ")
        if kernels:
            line += (f"{opt(r.get('kernel_us'), 9)} {opt(r.get('kernel_dnnl_us'), 8)} "
                     f"{opt(r.get('kernel_vs_dnnl'), 8, '.2f', 'x')} ")
        lines.append(line + f"{r['floor_us']:>8.2f}")
    if rows and all(r["dnnl_us"] for r in rows):
        m = sum(r["mlpc_us"] for r in rows)
        d = sum(r["dnnl_us"] for r in rows)
        f = sum(r["floor_us"] for r in rows)
        line = f"{'':>5} {'all matmul nodes':34} {'':16} {m:>8.2f} {d:>8.2f} {d / m:>7.2f}x "
        if kernels and all(r.get("kernel_us") for r in rows):
            km = sum(r["kernel_us"] for r in rows)
            kd = sum(r["kernel_dnnl_us"] for r in rows)
            line += f"{km:>9.2f} {kd:>8.2f} {kd / km:>7.2f}x "
        lines.append(line + f"{f:>8.2f}")
    return lines
