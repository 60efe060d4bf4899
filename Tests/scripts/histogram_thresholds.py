#!/usr/bin/env python3
"""Independent numpy reference for vitq's histogram calibrators (HistogramThreshold.swift).

Run by Tests/VitqQuantTests/HistogramCalibratorTests.swift on a raw little-endian float32 file:

  histogram_thresholds.py symmetric VALUES --bins B --percentile P --quantized-bins Q --levels L
      histogram of |x| over [0, max|x|]: {"counts", "percentile", "entropy", "mse"}
  histogram_thresholds.py affine VALUES --bins B --percentile P --quantized-bins Q --steps N
      histogram of x over [min x, max x]: {"counts", "percentileRange", "mseRange", "entropyRange"}
  histogram_thresholds.py weight VALUES --levels L
      {"mseWeight"}

The conventions are the ones HistogramThreshold documents; the code is deliberately built the direct
way (np.histogram, explicit P and Q arrays per candidate, error matrices over all candidates) rather
than with the Swift side's prefix sums and closed forms, so the two agree only if both are right.
"""
import argparse
import json
import sys

import numpy as np

EPS = 1e-4   # counts given to the empty Q bins where P has mass
ROUNDS = 4   # coordinate-descent rounds of the affine searches


def histogram(x, lo, hi, bins):
    counts, edges = np.histogram(np.clip(x, lo, hi), bins=bins, range=(lo, hi))
    return counts.astype(np.int64), edges


def percentile_bins(counts, p):
    target = p / 100 * counts.sum()
    k_hi = int(np.argmax(np.cumsum(counts) >= target))
    suffix = np.cumsum(counts[::-1])[::-1]
    k_lo = int(np.nonzero(suffix >= target)[0].max())
    return k_lo, k_hi


def kl_window(c, l, r, nq):
    """KL(P||Q) for the window of bins l..<r, P and Q built explicitly."""
    p = c[l:r].copy()
    p[0] += c[:l].sum()
    p[-1] += c[r:].sum()
    n = r - l
    group = (np.arange(n) * nq) // n
    mass = np.bincount(group, weights=c[l:r], minlength=nq)
    nonzero = np.bincount(group, weights=(p > 0).astype(np.float64), minlength=nq)
    q = np.where(p > 0, mass[group] / np.maximum(nonzero[group], 1.0), 0.0)
    if q.sum() == 0:
        return np.inf
    q[(p > 0) & (q == 0)] = EPS
    P = p / p.sum()
    Q = q / q.sum()
    m = P > 0
    return float(np.sum(P[m] * np.log(P[m] / Q[m])))


def first_argmin(values):
    return int(np.argmin(np.asarray(values)))


def entropy_symmetric(counts, edges, nq):
    c = counts.astype(np.float64)
    bins = len(c)
    if bins < nq:
        return float(edges[-1])
    cands = list(range(nq, bins + 1))
    return float(edges[cands[first_argmin([kl_window(c, 0, i, nq) for i in cands])]])


def entropy_range(counts, edges, nq):
    c = counts.astype(np.float64)
    bins = len(c)
    l, r = 0, bins
    for _ in range(ROUNDS):
        l0, r0 = l, r
        cands = list(range(l + nq, bins + 1))
        r = cands[first_argmin([kl_window(c, l, j, nq) for j in cands])]
        cands = list(range(0, r - nq + 1))
        l = cands[first_argmin([kl_window(c, j, r, nq) for j in cands])]
        if (l, r) == (l0, r0):
            break
    return [float(edges[l]), float(edges[r])]


def grid_errors(centres, counts, scale, zero, qlo, qhi):
    """Σ counts (fake-quantized centre − centre)² for each (scale, zero) row, in chunks."""
    w = counts.astype(np.float64)
    out = []
    for a in range(0, len(scale), 128):
        s = scale[a:a + 128, None]
        z = zero[a:a + 128, None]
        y = (np.clip(np.rint(centres[None, :] / s) + z, qlo, qhi) - z) * s
        out.append(((y - centres[None, :]) ** 2 * w[None, :]).sum(axis=1))
    return np.concatenate(out)


def mse_symmetric(counts, edges, levels):
    centres = (edges[:-1] + edges[1:]) / 2
    bins = len(counts)
    cands = np.arange(max(1, min(levels + 1, bins)), bins + 1)
    scale = edges[cands] / levels
    err = grid_errors(centres, counts, scale, np.zeros_like(scale), -levels, levels)
    return float(edges[cands[int(np.argmin(err))]])


def mse_range(counts, edges, steps):
    centres = (edges[:-1] + edges[1:]) / 2
    bins = len(counts)

    def errors(lo, hi):
        a = np.minimum(lo, 0.0)
        b = np.maximum(hi, 0.0)
        s = (b - a) / steps
        z = np.clip(np.rint(-a / s), 0, steps)
        return grid_errors(centres, counts, s, z, 0, steps)

    l, r = 0, bins
    for _ in range(ROUNDS):
        l0, r0 = l, r
        cands = np.arange(l + 1, bins + 1)
        r = int(cands[np.argmin(errors(np.full(len(cands), edges[l]), edges[cands]))])
        cands = np.arange(0, r)
        l = int(cands[np.argmin(errors(edges[cands], np.full(len(cands), edges[r])))])
        if (l, r) == (l0, r0):
            break
    return [float(edges[l]), float(edges[r])]


def mse_weight(x, levels):
    x = x[np.isfinite(x)].astype(np.float64)
    amax = float(np.abs(x).max()) if x.size else 0.0
    if amax == 0:
        return 0.0
    t = amax * np.arange(100, 201) / 200
    s = (t / levels)[:, None]
    err = ((np.clip(np.rint(x[None, :] / s), -levels, levels) * s - x[None, :]) ** 2).sum(axis=1)
    return float(t[int(np.argmin(err))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["symmetric", "affine", "weight"])
    ap.add_argument("values")
    ap.add_argument("--bins", type=int, default=2048)
    ap.add_argument("--percentile", type=float, default=99.99)
    ap.add_argument("--quantized-bins", type=int, default=128)
    ap.add_argument("--levels", type=int, default=127)
    ap.add_argument("--steps", type=int, default=255)
    a = ap.parse_args()
    x32 = np.fromfile(a.values, dtype="<f4")
    if a.mode == "weight":
        out = {"mseWeight": mse_weight(x32, a.levels)}
    elif a.mode == "symmetric":
        x = np.abs(x32.astype(np.float64))
        counts, edges = histogram(x, 0.0, float(np.abs(x32).max()), a.bins)
        out = {"counts": counts.tolist(),
               "percentile": float(edges[percentile_bins(counts, a.percentile)[1] + 1]),
               "entropy": entropy_symmetric(counts, edges, a.quantized_bins),
               "mse": mse_symmetric(counts, edges, a.levels)}
    else:
        x = x32.astype(np.float64)
        counts, edges = histogram(x, float(x32.min()), float(x32.max()), a.bins)
        k_lo, k_hi = percentile_bins(counts, a.percentile)
        out = {"counts": counts.tolist(),
               "percentileRange": [float(edges[k_lo]), float(edges[k_hi + 1])],
               "mseRange": mse_range(counts, edges, a.steps),
               "entropyRange": entropy_range(counts, edges, a.quantized_bins)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
