#!/usr/bin/python3
"""Step-by-step comparison of mlpc's optimizers with PyTorch's.

For each optimizer configuration, both frameworks start from the same
parameters (`mlpc train --init`) and take the same 100 minibatches
(`mlpc train --batches`) of the makemore model with BatchNorm (the seed's
forward pass without b1, written out in torch exactly as mlpc defines it:
Bessel-corrected batch variance, as in makemore part 4). The script prints, per configuration,
the largest relative difference over all parameters after the last step:
max |p_mlpc - p_torch| / max |p_torch|, per tensor, then the max over tensors.

PyTorch (Debian python3-torch) is a reference here, never a build or test
dependency. Usage:

    /usr/bin/python3 scripts/torch_optim_crosscheck.py [--mlpc build/tools/mlpc] [--steps 100]
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

V, T, E, H, N = 27, 3, 10, 64, 32

MODEL = """model crosscheck
dim V = vocab
dim T = 3
dim E = 10
dim H = 64
dim N = batch
input X : i32[N, T]
target Y : i32[N]
param C : [V, E] = randn
param W1 : [T*E, H] = randn * (5/3) / sqrt(T*E)
param W2 : [H, V] = randn * 0.1
param b2 : [V] = randn * 0.1
param bngain : [H] = 1 + randn * 0.1
param bnbias : [H] = randn * 0.1
forward {
  emb = C[X]
  embcat = reshape(emb, [N, T*E])
  hprebn = embcat @ W1
  hpreact = batchnorm(hprebn, bngain, bnbias)
  h = tanh(hpreact)
  logits = h @ W2 + b2
  loss = cross_entropy(logits, Y)
}
train {
  steps 100
  batch 32
  sgd lr 0.1
}
"""

# name, the train-block lines, a function building the torch optimizer, clip, warmup, cosine min
CONFIGS = [
    ("sgd", "sgd lr 0.1", lambda p: torch.optim.SGD(p, lr=0.1), None, 0, None),
    ("sgd momentum nesterov wd", "sgd lr 0.05 momentum 0.9 nesterov weight_decay 1e-4",
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
     None, 0, None),
    ("sgd momentum dampening", "sgd lr 0.05 momentum 0.9 dampening 0.1",
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1), None, 0, None),
    ("adam", "adam lr 3e-3", lambda p: torch.optim.Adam(p, lr=3e-3), None, 0, None),
    ("adam wd betas eps", "adam lr 3e-3 betas 0.8 0.99 eps 1e-6 weight_decay 1e-3",
     lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-3),
     None, 0, None),
    ("adamw", "adamw lr 3e-3", lambda p: torch.optim.AdamW(p, lr=3e-3), None, 0, None),
    ("adamw clip warmup cosine",
     "adamw lr 3e-3 weight_decay 0.1\n  clip_grad_norm 1.0\n  warmup 10\n  cosine min_lr 1e-4",
     lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.1), 1.0, 10, 1e-4),
    ("sgd warmup cosine", "sgd lr 0.1\n  warmup 20\n  cosine",
     lambda p: torch.optim.SGD(p, lr=0.1), None, 20, 0.0),
]

# No b1 before the BatchNorm: its exact gradient is zero (the batch mean
# removes it), so Adam would normalise pure rounding noise into steps of size
# lr and the comparison would measure noise, not semantics.
NAMES = ["C", "W1", "W2", "b2", "bngain", "bnbias"]


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        dtype = {np.float32: "F32", np.int32: "I32"}[array.dtype.type]
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = np.float32 if info["dtype"] == "F32" else np.int32
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtype).reshape(info["shape"])
    return out


def schedule(step, base, steps, warmup, cosine_min):
    """The train block's schedule (ir/Module.h TrainConfig::learningRate)."""
    if step < warmup:
        return base * (step + 1) / warmup
    if cosine_min is not None:
        progress = (step - warmup) / (steps - warmup)
        return cosine_min + (base - cosine_min) * (1 + math.cos(math.pi * progress)) / 2
    return base


def torch_run(init, X, Y, make_optimizer, clip, warmup, cosine_min, steps):
    params = {k: torch.tensor(init[k], dtype=torch.float32, requires_grad=True) for k in NAMES}
    opt = make_optimizer([params[k] for k in NAMES])
    base = opt.param_groups[0]["lr"]
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = schedule(step, base, steps, warmup, cosine_min)
        x = torch.tensor(X[step], dtype=torch.long)
        y = torch.tensor(Y[step], dtype=torch.long)
        p = params
        emb = p["C"][x]
        hprebn = emb.view(N, T * E) @ p["W1"]
        mean = hprebn.mean(0, keepdim=True)
        var = hprebn.var(0, keepdim=True, unbiased=True)
        hpreact = p["bngain"] * (hprebn - mean) / torch.sqrt(var + 1e-5) + p["bnbias"]
        logits = torch.tanh(hpreact) @ p["W2"] + p["b2"]
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([params[k] for k in NAMES], clip)
        opt.step()
    return {k: v.detach().numpy() for k, v in params.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mlpc", default="build/tools/mlpc")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--data", default=None, help="names.txt (for mlpc's final evaluation)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(1234)
    init = {
        "C": rng.standard_normal((V, E)),
        "W1": rng.standard_normal((T * E, H)) * (5 / 3) / math.sqrt(T * E),
        "W2": rng.standard_normal((H, V)) * 0.1,
        "b2": rng.standard_normal(V) * 0.1,
        "bngain": 1 + rng.standard_normal(H) * 0.1,
        "bnbias": rng.standard_normal(H) * 0.1,
    }
    init = {k: v.astype(np.float32) for k, v in init.items()}
    X = rng.integers(0, V, (args.steps, N, T)).astype(np.int32)
    Y = rng.integers(0, V, (args.steps, N)).astype(np.int32)
    print(f"{'optimizer':<28} {'max rel diff':>12}  worst tensor")
    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        state = dict(init)
        state["bngain.running_mean"] = np.zeros(H, np.float32)
        state["bngain.running_var"] = np.ones(H, np.float32)
        write_safetensors(os.path.join(tmp, "init.safetensors"), state)
        write_safetensors(os.path.join(tmp, "batches.safetensors"), {"X": X, "Y": Y})
        for name, lines, make, clip, warmup, cosine_min in CONFIGS:
            model = os.path.join(tmp, "model.mlp")
            with open(model, "w") as f:
                f.write(MODEL.replace("sgd lr 0.1", lines))
            out = os.path.join(tmp, "final.safetensors")
            cmd = [args.mlpc, "train", model, "--init", os.path.join(tmp, "init.safetensors"),
                   "--batches", os.path.join(tmp, "batches.safetensors"),
                   "--set", f"steps={args.steps}", "--samples", "0", "--out", out]
            if args.data:
                cmd += ["--data", args.data]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{name:<28} mlpc failed: {run.stderr.strip().splitlines()[-1]}")
                worst_all = math.inf
                continue
            ours = read_safetensors(out)
            theirs = torch_run(init, X, Y, make, clip, warmup, cosine_min, args.steps)
            diffs = {k: float(np.max(np.abs(ours[k] - theirs[k])) / np.max(np.abs(theirs[k])))
                     for k in NAMES}
            worst = max(diffs, key=diffs.get)
            worst_all = max(worst_all, diffs[worst])
            print(f"{name:<28} {diffs[worst]:12.2e}  {worst}")
    return 0 if worst_all < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
