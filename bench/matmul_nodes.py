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


def compare(mlpc, model, profile, dnnl_exe, cwd):
    """Rows for harness.json: node, op, shapes, flops, mlpc us, dnnl us, vs dnnl."""
    rows = matmul_rows(mlpc, model, profile, cwd)
    dnnl = dnnl_times(dnnl_exe, [s for _, shapes in rows for s in shapes]) if dnnl_exe else {}
    out = []
    for row, shapes in rows:
        flops = sum(2 * m * n * k for m, n, k, _ in shapes)
        d = [dnnl.get(s) for s in shapes]
        d_us = sum(r["us_median"] for r in d) if d and all(d) else None
        out.append({"node": row["node"], "op": row["op"], "name": row.get("name", ""),
                    "shapes": [f"{m}x{n}x{k}:{t}" for m, n, k, t in shapes], "flops": flops,
                    "mlpc_us": row["us_per_step"], "dnnl_us": d_us,
                    "vs_dnnl": (d_us / row["us_per_step"]) if d_us else None})
    return out


def table(rows, peak_gflops):
    """The printed table; adds floor_us (one core) to the rows."""
    for r in rows:
        r["floor_us"] = r["flops"] / (peak_gflops * 1e3)
    lines = ["matmul nodes of mlpc bench --profile (median of 3 runs) vs dnnl_sgemm (one thread, same M x N x K, "
             "A/B N = as stored, T = transposed; vs dnnl >= 1.0: mlpc at least as fast)",
             f"{'node':>5} {'op':34} {'MxNxK:AB':16} {'mlpc us':>8} {'dnnl us':>8} {'vs dnnl':>8} "
             f"{'floor us':>8}"]
    for r in rows:
        d = f"{r['dnnl_us']:>8.2f}" if r["dnnl_us"] else f"{'-':>8}"
        v = f"{r['vs_dnnl']:>7.2f}x" if r["vs_dnnl"] else f"{'-':>8}"
        lines.append(f"{'%' + str(r['node']):>5} {r['op'][:34]:34} {','.join(r['shapes']):16} "
                     f"{r['mlpc_us']:>8.2f} {d} {v} {r['floor_us']:>8.2f}")
    if rows and all(r["dnnl_us"] for r in rows):
        m = sum(r["mlpc_us"] for r in rows)
        d = sum(r["dnnl_us"] for r in rows)
        f = sum(r["floor_us"] for r in rows)
        lines.append(f"{'':>5} {'all matmul nodes':34} {'':16} {m:>8.2f} {d:>8.2f} {d / m:>7.2f}x {f:>8.2f}")
    return lines
