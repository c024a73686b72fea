#!/usr/bin/python3
"""Fits the rational tanh of codegen/MathEmitter.cpp (emitTanh).

tanh(c) / c ~= P(t) / Q(t), t = c^2, c in [0, 9], P and Q of degree 4 with
P(0) = Q(0) = 1: a near-minimax fit of the relative error by Lawson's
iteratively reweighted least squares, the coefficients rounded to float one
at a time (highest order first) with the rest refitted after each. Then the
emitted evaluation is replayed in float32 (fused multiply-adds, the clamp at
9.5, min(1, .), a reciprocal estimate with one Newton step) over the test's
sweep, tests/unit/test_codegen_math.cpp, and the max relative error printed.

Needs Debian's python3-numpy and python3-mpmath (a development script: no
build or test runs it). Run: /usr/bin/python3 scripts/fit_tanh.py
"""
import mpmath as mp
import numpy as np

FIT_END, CLAMP = 9.0, 9.5


def fit(t, f, fixed):
    """Lawson iterations for P/Q with the coefficients in `fixed` held."""
    columns = np.stack([t**k for k in range(1, 5)] + [-f * t**k for k in range(1, 5)], 1)
    free = [i for i in range(8) if i not in fixed]
    weights, best = np.ones_like(t), None
    for _ in range(150):
        rhs = f - 1.0 - sum(columns[:, i] * v for i, v in fixed.items())
        scale = np.sqrt(weights) / f
        c, *_ = np.linalg.lstsq(columns[:, free] * scale[:, None], rhs * scale, rcond=None)
        coeffs = np.zeros(8)
        coeffs[free] = c
        for i, v in fixed.items():
            coeffs[i] = v
        p = 1 + sum(coeffs[k] * t ** (k + 1) for k in range(4))
        q = 1 + sum(coeffs[4 + k] * t ** (k + 1) for k in range(4))
        err = np.abs(p / q / f - 1)
        if best is None or err.max() < best[0]:
            best = (err.max(), coeffs.copy())
        weights = weights * err / err.mean()
        weights /= weights.sum()
    return best


def float32_tanh(x, a, b):
    f32 = np.float32

    def fma(u, v, w):  # exact product and sum in double, one rounding to float
        return (u.astype(np.float64) * v.astype(np.float64) + w.astype(np.float64)).astype(f32)

    def horner(t, coeffs):
        acc = np.full_like(t, coeffs[0])
        for c in coeffs[1:]:
            acc = fma(acc, t, np.full_like(t, c))
        return acc

    c = np.minimum(np.abs(x), f32(CLAMP))
    t = (c * c).astype(f32)
    p = horner(t, [a[3], a[2], a[1], a[0], f32(1)])
    q = horner(t, [b[3], b[2], b[1], b[0], f32(1)])
    # vrcp14ps: relative error up to 2^-14; then q0 = p r, q0 + (p - q0 q) r.
    rng = np.random.default_rng(0)
    r = (1 / q.astype(np.float64) * (1 + rng.uniform(-1, 1, q.shape) * 2**-14)).astype(f32)
    q0 = (p * r).astype(f32)
    ratio = (c * fma(fma(-q0, q, p), r, q0)).astype(f32)
    return np.copysign(np.minimum(ratio, f32(1)), x)


def main():
    mp.mp.dps = 30
    xs = np.unique(np.concatenate([np.linspace(1e-4, FIT_END, 12000), np.geomspace(1e-4, 1, 1000)]))
    f = np.array([float(mp.tanh(mp.mpf(x)) / mp.mpf(x)) for x in xs])
    t = xs * xs
    fixed = {}
    for i in [3, 7, 2, 6, 1, 5, 0, 4]:  # highest order first
        _, coeffs = fit(t, f, fixed)
        fixed[i] = float(np.float32(coeffs[i]))
    a = [np.float32(fixed[i]) for i in range(4)]
    b = [np.float32(fixed[4 + i]) for i in range(4)]
    print("P (t^4 .. t):", ", ".join(f"{v:.9e}" for v in reversed(a)))
    print("Q (t^4 .. t):", ", ".join(f"{v:.9e}" for v in reversed(b)))
    sweep = np.concatenate([np.linspace(-12, 12, 1 << 22, dtype=np.float32),
                            np.linspace(-1e-3, 1e-3, 1 << 18, dtype=np.float32)])
    y = float32_tanh(sweep, a, b)
    ref = np.tanh(sweep.astype(np.float64))
    err = np.abs(y - ref) / np.where(ref == 0, 1, np.abs(ref))
    worst = err.argmax()
    print(f"float32 max relative error {err[worst]:.3g} at x = {sweep[worst]:.9g}; "
          f"tanh(100) = {float32_tanh(np.array([100], np.float32), a, b)[0]}")


if __name__ == "__main__":
    main()
