"""Benchmark the disentanglement metrics against straightforward reference-style loops.

Run from the repository root::

    python benchmarks/bench_metrics.py --quick      # about a minute on 2 cores
    python benchmarks/bench_metrics.py              # full: DCI with the reference's 5x4 grid (several minutes)

Size (default): 20 factors x 2048 codes x 250 samples (Koo et al.'s 25 contents x 10 FX
configurations, 2048-d FXencoder embeddings). For each metric it prints the time of
``mixeval.metrics`` (best of ``--repeats``), the time of a naive implementation of the same
definitions written below (pairwise Python loops over factor x code, as the reference code does;
the reference itself calls pyitlib per pair, which is slower still), the speed-up and the largest
difference between the two results.

DCI is too slow at full size (the reference grid costs 201 forest fits per factor, ~0.3-2 s
each at 2048 codes): it runs on ``--dci-factors`` factors only, and ``--quick`` also shrinks the grid
to a single configuration (max_depth 8, max_features 0.2). Its naive counterpart is the reference
procedure run serially (``cross_val_score`` per configuration, ``n_jobs=1``) with the same seeds,
so both give identical numbers; the speed-up is the joblib parallelism over ``--n-jobs`` cores.
``--quick`` times the naive pairwise loops on the first 256 codes and scales the time linearly to
all codes (marked with ``*``; the loops are linear in the number of codes).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import minmax_scale

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixeval.metrics.disentangle import dci, dcimig, mig, sap  # noqa: E402
from mixeval.metrics.information import discretize, mutual_information_matrix  # noqa: E402

# ----------------------------------------------------------------------------- naive references


def naive_bins(x: np.ndarray, nb_bins: int = 10) -> np.ndarray:
    edges = np.linspace(0, 1, nb_bins + 1)[:-1]
    return np.digitize(minmax_scale(x), edges).astype(int)


def naive_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in MI (bits) of two label vectors from their contingency table."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0)
    p = joint / joint.sum()
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (pa @ pb)[nz])).sum())


def naive_mi_matrix(f_lab: np.ndarray, c_lab: np.ndarray) -> np.ndarray:
    k, l = f_lab.shape[1], c_lab.shape[1]
    return np.array([[naive_mi(f_lab[:, i], c_lab[:, j]) for j in range(l)] for i in range(k)])


def naive_dcimig(factors: np.ndarray, codes: np.ndarray) -> float:
    f, c = naive_bins(factors), naive_bins(codes)
    m = naive_mi_matrix(f, c)
    for j in range(m.shape[1]):
        col = np.sort(m[:, j])
        top = int(np.argmax(m[:, j]))
        gap = col[-1] - col[-2]
        m[:, j] = 0.0
        m[top, j] = gap
    return float(m.max(axis=1).sum() / sum(naive_mi(f[:, i], f[:, i]) for i in range(f.shape[1])))


def naive_mig(factors: np.ndarray, codes: np.ndarray) -> float:
    f, c = naive_bins(factors), naive_bins(codes)
    m = naive_mi_matrix(f, c)
    h_c = np.array([naive_mi(c[:, j], c[:, j]) for j in range(c.shape[1])])
    total = 0.0
    for i in range(f.shape[1]):
        row = np.sort(m[i] / h_c)
        total += row[-1] - row[-2]
    return total / f.shape[1]


def naive_sap(factors: np.ndarray, codes: np.ndarray) -> float:
    s = np.zeros((factors.shape[1], codes.shape[1]))
    for i in range(factors.shape[1]):
        for j in range(codes.shape[1]):
            x = codes[:, j : j + 1]
            pred = LinearRegression().fit(x, factors[:, i]).predict(x)
            s[i, j] = max(0.0, r2_score(factors[:, i], pred))
    s.sort(axis=1)
    return float(np.mean(s[:, -1] - s[:, -2]))


def naive_dci(factors, codes, grid, n_splits, seed) -> tuple[float, float, float]:
    f, c = minmax_scale(factors), minmax_scale(codes)
    k, l = f.shape[1], c.shape[1]
    e = np.zeros((k, l))
    info = np.zeros(k)
    for j in range(k):
        best, best_mse = None, 10e10
        for md, mf in grid:
            model = RandomForestRegressor(n_estimators=10, max_depth=md, max_features=mf, random_state=seed)
            mse = -cross_val_score(model, c, f[:, j], cv=n_splits, scoring="neg_mean_squared_error").mean()
            if mse < best_mse:
                best, best_mse = (md, mf), mse
        model = RandomForestRegressor(n_estimators=10, max_depth=best[0], max_features=best[1], random_state=seed)
        model.fit(c, f[:, j])
        info[j] = max(1 - 12 * mean_squared_error(model.predict(c), f[:, j]), 0)
        e[j] = np.clip(model.feature_importances_, 0, None)
    rho = e.sum(axis=0)
    d = np.zeros(l)
    for i in range(l):  # without the reference's `break`, as the library default
        if rho[i] > 0:
            d[i] = 1 + sum(p * math.log(p, k) for p in e[:, i] / rho[i] if p > 0)
    comp = [1 + sum(p * math.log(p, l) for p in e[j] / e[j].sum() if p > 0) for j in range(k)]
    return float(np.dot(d, rho / rho.sum())), float(np.mean(comp)), float(info.mean())


# ----------------------------------------------------------------------------- harness


def best_time(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1-config DCI grid; naive loops on 256 codes")
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--codes", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=250)
    ap.add_argument("--dci-factors", type=int, default=2, help="factors used for the DCI rows")
    ap.add_argument("--n-jobs", type=int, default=-1, help="DCI workers (-1 = all cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    n, k, l = args.samples, args.factors, args.codes
    factors = rng.uniform(size=(n, k))
    codes = (factors @ rng.normal(size=(k, l)) + rng.normal(size=(n, l))).astype(np.float32)
    print(f"data: {n} samples x {k} factors x {l} codes (float32); {os.cpu_count()} CPU cores; quick={args.quick}")

    rows = []
    sub = min(l, 256) if args.quick else l  # codes seen by the naive pairwise loops
    scale, mark = l / sub, ("*" if sub < l else "")
    cs = codes[:, :sub]
    f_lab, c_lab = discretize(factors), discretize(codes)
    t_ours, mi = best_time(lambda: mutual_information_matrix(f_lab, c_lab), args.repeats)
    t_naive, mi_naive = best_time(lambda: naive_mi_matrix(f_lab, c_lab[:, :sub]), 1)
    rows.append((f"MI matrix {k}x{l}", t_ours, t_naive * scale, mark, np.abs(mi[:, :sub] - mi_naive).max()))
    for name, ours, naive in (
        ("DCIMIG", dcimig, naive_dcimig),
        ("MIG (code-normalised)", mig, naive_mig),
        ("SAP (regression)", sap, naive_sap),
    ):
        t_ours, _ = best_time(lambda: ours(factors, codes), args.repeats)
        t_naive, v_naive = best_time(lambda: naive(factors, cs), 1)
        rows.append((name, t_ours, t_naive * scale, mark, abs(ours(factors, cs) - v_naive)))

    kd = min(args.dci_factors, k)
    mds, mfs = ((8,), (0.2,)) if args.quick else ((8, 16, 32, 64, 128), (0.2, 0.4, 0.8, 1.0))
    grid = [(md, mf) for md in mds for mf in mfs]
    print(f"DCI: {kd} factors, grid {len(grid)} configuration(s) x 10 folds, n_jobs={args.n_jobs} ...", flush=True)
    t_ours, res = best_time(
        lambda: dci(factors[:, :kd], codes, seed=args.seed, n_jobs=args.n_jobs, max_depths=mds, max_features=mfs), 1
    )
    t_naive, v_naive = best_time(lambda: naive_dci(factors[:, :kd], codes, grid, 10, args.seed), 1)
    rows.append((f"DCI-RF ({kd} factors)", t_ours, t_naive, "", max(abs(a - b) for a, b in zip(res, v_naive))))

    print(f"\n{'metric':<24}{'mixeval [s]':>13}{'naive [s]':>13}{'speed-up':>10}{'max |diff|':>12}")
    for name, t_o, t_n, mark, d in rows:
        print(f"{name:<24}{t_o:>13.4f}{t_n:>12.3f}{mark or ' '}{t_n / t_o:>9.1f}x{d:>12.1e}")
    if args.quick and sub < l:
        print(f"* naive loop timed on the first {sub} of {l} codes and scaled x{scale:g} (linear in codes);"
              " max |diff| compares both on those codes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
