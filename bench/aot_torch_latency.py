#!/usr/bin/python3
"""PyTorch reference for bench/aot_latency.c: the same folded makemore network.

Run with /usr/bin/python3 (Debian torch 1.13), one thread, inference mode:

  bench/aot_torch_latency.py CKPT names.txt [seconds]

Loads the checkpoint (safetensors, read by hand: no extra package), folds the
BatchNorm exactly as mlpc does (W' = W1 * s, b' = (b1 - mean) * s + bias with
s = gain / sqrt(var + eps)), and times
  latency_ns_median  one row per call, logits = tanh(C[x].view(1, -1) @ W' + b') @ W2 + b2,
                     median over batches of 256 calls of the per-call time
  rows_per_s         the rows of the first int(0.8 * names) names (the same rows
                     as aot_latency.c), in calls of 512 rows: one call over all
                     rows would time page faults of ~150 MB temporaries on
                     this VM (see pytorch_step.py), not the forward pass
Prints one JSON line.
"""
import json
import statistics
import struct
import sys
import time

import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32)
        out[name] = t.reshape(info["shape"])
    return out, header.get("__metadata__", {})


def rows_of(names_path, vocab, T):
    words = [w.strip() for w in open(names_path) if w.strip()]
    stoi = {c: i for i, c in enumerate(vocab)}
    X = []
    for w in words[: int(0.8 * len(words))]:
        ctx = [0] * T
        for ch in w + ".":
            X.append(ctx)
            ctx = ctx[1:] + [stoi[ch]]
    return torch.tensor(X, dtype=torch.long)


def blas_info():
    """Debian's torch uses the system BLAS (netlib reference unless switched)."""
    for part in torch.__config__.show().split(","):
        if "BLAS_INFO" in part:
            return part.split("=")[1].strip()
    return "unknown"


def main():
    ckpt, names = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    torch.set_num_threads(1)
    p, meta = load_safetensors(ckpt)
    T = int(meta.get("context", 3))
    s = p["bngain"] / torch.sqrt(p["bngain.running_var"] + 1e-5)
    W1f = (p["W1"] * s).contiguous()
    b1f = (p["b1"] - p["bngain.running_mean"]) * s + p["bnbias"]
    C, W2, b2 = p["C"], p["W2"], p["b2"]
    X = rows_of(names, meta.get("vocab", ".abcdefghijklmnopqrstuvwxyz"), T)

    def forward(x):
        return torch.tanh(C[x].view(x.shape[0], -1) @ W1f + b1f) @ W2 + b2

    with torch.inference_mode():
        per_call, start, r = [], time.perf_counter(), 0
        while time.perf_counter() - start < seconds or len(per_call) < 21:
            t0 = time.perf_counter()
            for _ in range(256):
                r = (r + 1) % X.shape[0]
                out = forward(X[r:r + 1])
            per_call.append((time.perf_counter() - t0) / 256 * 1e9)
        latency = statistics.median(per_call)
        chunks = list(torch.split(X, 512))
        for x in chunks:
            forward(x)
        bulk, start = [], time.perf_counter()
        while time.perf_counter() - start < seconds or len(bulk) < 3:
            t0 = time.perf_counter()
            for x in chunks:
                out = forward(x)
            bulk.append(time.perf_counter() - t0)
        all_s, best = statistics.median(bulk), min(bulk)
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": 1,
                      "latency_ns_median": round(latency, 1), "rows": X.shape[0], "rows_per_call": 512,
                      "all_rows_ms_median": round(all_s * 1e3, 3),
                      "rows_per_s": round(X.shape[0] / all_s), "rows_per_s_best": round(X.shape[0] / best),
                      "blas": blas_info(), "checksum": float(out[-1, -1])}))


if __name__ == "__main__":
    main()
