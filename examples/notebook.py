#!/usr/bin/env python3
"""The makemore part 2 notebook (seed 004) with mlpc from Python.

    PYTHONPATH=build/python /usr/bin/python3 examples/notebook.py [--steps N] [--out-dir DIR]

1. learning-rate search: 1000 steps with the rate growing exponentially from
   0.001 to 1, one fresh model, loss against the rate's exponent (lr_search.png);
2. training with the model's train block (200k steps, lr 0.1 then 0.01), the
   per-step loss through a callback (loss.png: log10 loss and its 1000-step mean);
3. the character embedding projected on its two principal axes (embedding.png);
4. the split losses and 20 sampled names.
Each section is a cell of the notebook; the PNGs go to --out-dir.
"""
import argparse
import os
import pathlib
import time

import matplotlib

matplotlib.use("Agg")  # files, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import mlpc  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default=str(ROOT / "examples" / "makemore.mlp"))
parser.add_argument("--data", default=None, help="names.txt (default: as the mlpc CLI finds it)")
parser.add_argument("--steps", type=int, default=None, help="training steps (default: the model's)")
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--out-dir", default="notebook_out")
args = parser.parse_args()
out = pathlib.Path(args.out_dir)
out.mkdir(parents=True, exist_ok=True)

# %% 1. Learning-rate search (seed: lre = torch.linspace(-3, 0, 1000); lrs = 10**lre)
m = mlpc.Model(args.model, seed=args.seed, data=args.data)
Xtr, Ytr = m.split("train")
rng = np.random.default_rng(args.seed)
lre = np.linspace(-3, 0, 1000)
search = []
for exponent in lre:
    rows = rng.integers(0, len(Ytr), m.batch)
    search.append(m.step(Xtr[rows], Ytr[rows], lr=10**exponent))
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(lre, search, lw=0.6, alpha=0.6, label="minibatch")
ax.set(xlabel="learning-rate exponent (lr = 10^x)", ylabel="minibatch loss",
       title=f"{m.name}: learning-rate search, 1000 steps from one initialisation")
ax.axvline(-1, color="gray", ls="--", lw=0.8)
ax.text(-0.98, max(search) * 0.95, "lr = 0.1", color="gray")
smooth = np.convolve(search, np.ones(50) / 50, mode="valid")  # 50-step means
best = lre[int(np.argmin(smooth)) + 25]
ax.plot(lre[25:25 + len(smooth)], smooth, lw=1.5, label="mean of 50 steps")
ax.legend(loc="lower left")
fig.tight_layout()
fig.savefig(out / "lr_search.png", dpi=120)
print(f"lr search: the 50-step mean loss is lowest at lr = 10^{best:.2f} = {10**best:.3f}")

# %% 2. Training with the train block (lr 0.1, then 0.01 after 100k steps)
m = mlpc.Model(args.model, seed=args.seed, data=args.data)
lossi = []
start = time.perf_counter()
losses = m.train(steps=args.steps, every=1, callback=lambda step, loss: lossi.append(loss))
seconds = time.perf_counter() - start
print(f"trained {m.step_count} steps in {seconds:.1f} s (compilation, a Python callback "
      f"every step, BatchNorm calibration and the split losses included)")
print("losses: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))

fig, ax = plt.subplots(figsize=(7, 4))
steps = np.arange(len(lossi))
ax.plot(steps, np.log10(lossi), lw=0.3, alpha=0.4, label="minibatch")
window = min(1000, len(lossi))
smooth = np.convolve(np.log10(lossi), np.ones(window) / window, mode="valid")
ax.plot(steps[window - 1:], smooth, lw=1.5, label=f"mean of {window} steps")
ax.set(xlabel="step", ylabel="log10 loss",
       title=f"{m.name}: training, final val loss {losses['val']:.4f}")
ax.legend()
fig.tight_layout()
fig.savefig(out / "loss.png", dpi=120)

# %% 3. The embedding (m.params["C"] is a view of the live table, [vocab, E])
C = m.params["C"].astype(np.float64)
centred = C - C.mean(axis=0)
_, sv, axes = np.linalg.svd(centred, full_matrices=False)
xy = centred @ axes[:2].T
share = (sv[:2] ** 2).sum() / (sv**2).sum()
fig, ax = plt.subplots(figsize=(6, 6))
ax.scatter(xy[:, 0], xy[:, 1], s=200)
for i, ch in enumerate(m.vocab):
    ax.text(xy[i, 0], xy[i, 1], ch, ha="center", va="center", color="white")
ax.set(title=f"{m.name}: embedding C on its two principal axes\n"
       f"({share:.0%} of its variance)",
       xlabel="axis 1", ylabel="axis 2")
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(out / "embedding.png", dpi=120)

# %% 4. Samples
for name in m.sample(20, seed=args.seed + 10):
    print(name)
print(f"wrote {', '.join(str(out / f) for f in ('lr_search.png', 'loss.png', 'embedding.png'))}")
