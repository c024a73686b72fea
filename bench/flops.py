#!/usr/bin/env python3
"""Matmul FLOP count of one makemore-MLP training step (forward + backward).

Counts only the six matmuls, 2 FLOPs (mul + add) per multiply-accumulate:

  forward   hprebn  = embcat @ W1      (B x TE) @ (TE x H)   2*B*TE*H
            logits  = h @ W2           (B x H)  @ (H x V)    2*B*H*V
  backward  dh      = dlogits @ W2^T   (B x V)  @ (V x H)    2*B*V*H
            dW2     = h^T @ dlogits    (H x B)  @ (B x V)    2*H*B*V
            dembcat = dhprebn @ W1^T   (B x H)  @ (H x TE)   2*B*H*TE
            dW1     = embcat^T@dhprebn (TE x B) @ (B x H)    2*TE*B*H

  total = 6*B*H*(T*E + V)

Elementwise work (BatchNorm, tanh, softmax, SGD update: O(B*H + params)) is
not counted.  For H=200, B=32: 6*32*200*(30+27) = 2,188,800 FLOP/step.

Usage: python3 bench/flops.py [--hidden H --batch B] | [--sweep]
"""
import argparse

V, T, E = 27, 3, 10


def matmul_flops(hidden, batch, vocab=V, context=T, embd=E):
    te = context * embd
    parts = {
        "fwd_embcat@W1": 2 * batch * te * hidden,
        "fwd_h@W2": 2 * batch * hidden * vocab,
        "bwd_dlogits@W2T": 2 * batch * vocab * hidden,
        "bwd_hT@dlogits": 2 * hidden * batch * vocab,
        "bwd_dhprebn@W1T": 2 * batch * hidden * te,
        "bwd_embcatT@dhprebn": 2 * te * batch * hidden,
    }
    total = sum(parts.values())
    assert total == 6 * batch * hidden * (te + vocab)
    return total, parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--sweep", action="store_true",
                    help="print the default sweep H in {64,200,512,1024} x B in {32,256}")
    a = ap.parse_args()
    if a.sweep:
        print(f"{'H':>5} {'B':>4} {'matmul FLOP/step':>17}")
        for h in (64, 200, 512, 1024):
            for b in (32, 256):
                print(f"{h:>5} {b:>4} {matmul_flops(h, b)[0]:>17,}")
        return
    total, parts = matmul_flops(a.hidden, a.batch)
    for k, v in parts.items():
        print(f"{k:22s} {v:>14,}")
    print(f"{'total':22s} {total:>14,}")


if __name__ == "__main__":
    main()
