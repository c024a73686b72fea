#!/usr/bin/python3
"""PyTorch reference for the makemore-MLP (BatchNorm) training step.

Run with /usr/bin/python3 (Debian torch 1.13); --threads N (default 1) sets
torch.set_num_threads(N), recorded as "threads" in the JSON.

Model / step (seed: makemore part 4, exercise 4):
  emb = C[Xb] -> embcat (B, T*E) -> hprebn = embcat@W1 + b1
  BatchNorm (training mode, batch mean, Bessel-corrected var /(B-1), eps 1e-5)
  h = tanh(hpreact) -> logits = h@W2 + b2 -> loss = cross_entropy(logits, Yb)
  SGD p -= lr*grad for all 7 params; BN running stats, momentum 0.001.

Modes:
  manual    the seed's exercise-4 manual backward under torch.no_grad()
            (fused CE grad, fused BN backward).  dC uses the seed's "Method 2"
            (dC.index_add_) rather than its Python double loop over B*T rows,
            which would time the interpreter, not the math (--dc loop restores
            the literal seed loop if you want that number).
  autograd  same forward, loss.backward(), then the same SGD update.

Timing: W warmup steps, then R reps of N steps each; every step includes the
minibatch sampling (torch.randint with a generator + indexing), as in the
seed loop.  us/step = rep elapsed / N; median over reps is reported.

Output: one JSON line
  {"impl":"pytorch-<mode>","hidden":H,"batch":B,"us_per_step_median":...,
   "us_per_step_all":[...],"final_loss":...}

Allocator (--malloc, default "tuned"): on this VM a page fault costs tens of
microseconds, and with glibc's default settings every freshly allocated
(B,H)-sized temporary above the dynamic mmap threshold, or heap memory trimmed
and re-grown, is faulted in again on every op (e.g. `1.0 - h**2` at
B=256,H=1024 takes ~5 ms instead of ~50 us).  "tuned" calls mallopt() at
startup (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 1 GiB, M_TOP_PAD 64 MiB) so
freed tensor memory is reused without faults -- what a caching allocator would
give PyTorch.  "default" leaves glibc as is; both are valid PyTorch numbers,
"tuned" is the fairer baseline.  The mode is recorded as "malloc" in the JSON.

Data: the real names.txt; words shuffled with random.seed(42) as in the seed,
80/10/10 split, training split only is used here.
--check compares the manual gradients against autograd on one batch and exits.
"""
import argparse
import ctypes
import json
import os
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F

V, T, E = 27, 3, 10
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "data", "names.txt")


def tune_malloc():
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    ok = (libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1
          and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
          and libc.mallopt(M_TOP_PAD, 64 * 1024 * 1024) == 1)
    if not ok:
        sys.exit("mallopt failed")


def build_dataset(words, stoi):
    X, Y = [], []
    for w in words:
        context = [0] * T
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def load_splits(path):
    words = open(path, "r").read().splitlines()
    words = [w for w in words if w]
    chars = sorted(list(set("".join(words))))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    assert len(stoi) == V, len(stoi)
    random.seed(42)
    random.shuffle(words)
    n1 = int(0.8 * len(words))
    n2 = int(0.9 * len(words))
    return (build_dataset(words[:n1], stoi),
            build_dataset(words[n1:n2], stoi),
            build_dataset(words[n2:], stoi))


def init_params(H, g):
    C = torch.randn((V, E), generator=g)
    W1 = torch.randn((E * T, H), generator=g) * (5 / 3) / ((E * T) ** 0.5)
    b1 = torch.randn(H, generator=g) * 0.1
    W2 = torch.randn((H, V), generator=g) * 0.1
    b2 = torch.randn(V, generator=g) * 0.1
    bngain = torch.randn((1, H), generator=g) * 0.1 + 1.0
    bnbias = torch.randn((1, H), generator=g) * 0.1
    return [C, W1, b1, W2, b2, bngain, bnbias]


def forward(params, Xb, Yb):
    C, W1, b1, W2, b2, bngain, bnbias = params
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmean = hprebn.mean(0, keepdim=True)
    bnvar = hprebn.var(0, keepdim=True, unbiased=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = (hprebn - bnmean) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Yb)
    return loss, dict(emb=emb, embcat=embcat, hprebn=hprebn, bnmean=bnmean,
                      bnvar=bnvar, bnvar_inv=bnvar_inv, bnraw=bnraw, h=h,
                      logits=logits)


def manual_backward(params, Xb, Yb, c, dc_loop=False):
    """Seed exercise 4, verbatim math."""
    C, W1, b1, W2, b2, bngain, bnbias = params
    n = Xb.shape[0]
    dlogits = F.softmax(c["logits"], 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2 = c["h"].T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - c["h"] ** 2) * dh
    bnraw = c["bnraw"]
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    dhprebn = bngain * c["bnvar_inv"] / n * (
        n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    dembcat = dhprebn @ W1.T
    dW1 = c["embcat"].T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(c["emb"].shape)
    dC = torch.zeros_like(C)
    if dc_loop:
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                ix = Xb[k, j]
                dC[ix] += demb[k, j]
    else:
        dC.index_add_(0, Xb.view(-1), demb.view(-1, E))
    return [dC, dW1, db1, dW2, db2, dbngain, dbnbias]


def make_step(mode, params, running, Xtr, Ytr, B, g, lr, dc_loop):
    bnmean_running, bnvar_running = running
    ntr = Xtr.shape[0]

    if mode == "manual":
        def step():
            with torch.no_grad():
                ix = torch.randint(0, ntr, (B,), generator=g)
                Xb, Yb = Xtr[ix], Ytr[ix]
                loss, c = forward(params, Xb, Yb)
                grads = manual_backward(params, Xb, Yb, c, dc_loop)
                for p, grad in zip(params, grads):
                    p.add_(grad, alpha=-lr)
                bnmean_running.mul_(0.999).add_(c["bnmean"], alpha=0.001)
                bnvar_running.mul_(0.999).add_(c["bnvar"], alpha=0.001)
            return loss
    else:
        for p in params:
            p.requires_grad_(True)

        def step():
            ix = torch.randint(0, ntr, (B,), generator=g)
            Xb, Yb = Xtr[ix], Ytr[ix]
            loss, c = forward(params, Xb, Yb)
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-lr)
                bnmean_running.mul_(0.999).add_(c["bnmean"], alpha=0.001)
                bnvar_running.mul_(0.999).add_(c["bnvar"], alpha=0.001)
            return loss
    return step


def check(Xtr, Ytr, H, B):
    g = torch.Generator().manual_seed(2147483647)
    params = init_params(H, g)
    for p in params:
        p.requires_grad_(True)
    ix = torch.randint(0, Xtr.shape[0], (B,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]
    loss, c = forward(params, Xb, Yb)
    loss.backward()
    with torch.no_grad():
        grads = manual_backward(params, Xb, Yb, c)
    names = ["C", "W1", "b1", "W2", "b2", "bngain", "bnbias"]
    ok = True
    for nme, p, gm in zip(names, params, grads):
        d = (p.grad - gm.view_as(p.grad)).abs().max().item()
        ok &= d < 1e-5
        print(f"{nme:7s} maxdiff {d:.3e}")
    print("manual == autograd:", ok)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=500, help="steps per rep")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mode", choices=["manual", "autograd"], default="manual")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--dc", choices=["index_add", "loop"], default="index_add",
                    help="dC scatter: index_add_ (default) or the seed's Python loop")
    ap.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                    help="glibc malloc settings (see module docstring)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--check", action="store_true",
                    help="compare manual grads to autograd on one batch and exit")
    a = ap.parse_args()
    if a.threads < 1:
        sys.exit("--threads must be >= 1")
    torch.set_num_threads(a.threads)
    if a.malloc == "tuned":
        tune_malloc()

    (Xtr, Ytr), _, _ = load_splits(a.data)
    if a.check:
        sys.exit(check(Xtr, Ytr, a.hidden, a.batch))

    H, B = a.hidden, a.batch
    g = torch.Generator().manual_seed(2147483647)
    params = init_params(H, g)
    running = (torch.zeros((1, H)), torch.ones((1, H)))
    step = make_step(a.mode, params, running, Xtr, Ytr, B, g, a.lr, a.dc == "loop")

    for _ in range(a.warmup):
        step()
    times = []
    loss = None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            loss = step()
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e6 / a.steps)
    impl = f"pytorch-{a.mode}" + ("-dcloop" if a.dc == "loop" else "")
    print(json.dumps({
        "impl": impl,
        "hidden": H,
        "batch": B,
        "malloc": a.malloc,
        "threads": torch.get_num_threads(),
        "us_per_step_median": round(statistics.median(times), 3),
        "us_per_step_min": round(min(times), 3),
        "us_per_step_all": [round(t, 3) for t in times],
        "final_loss": round(float(loss.item()) if loss is not None else float("nan"), 6),
    }))


if __name__ == "__main__":
    main()
