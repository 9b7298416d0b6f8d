"""Benchmark the disentanglement metrics against straightforward reference-style loops.

Run from the repository root::

    python benchmarks/bench_metrics.py --quick      # under a minute on 2 cores
    python benchmarks/bench_metrics.py              # DCI: reference 5x4 grid, 2 factors x 2048 codes x 2 seeds (~1 h on 2 cores)
    python benchmarks/bench_metrics.py --only-dci --skip-sklearn-backend   # the README's DCI table (~25 min)

Size (default): 20 factors x 2048 codes x 250 samples (Koo et al.'s 25 contents x 10 FX
configurations, 2048-d FXencoder embeddings). For each metric it prints the time of
``mixeval.metrics`` (best of ``--repeats``), the time of a naive implementation of the same
definitions written below (pairwise Python loops over factor x code, as the reference code does;
the reference itself calls pyitlib per pair, which is slower still), the speed-up and the largest
difference between the two results.

DCI-RF rows time the **reference procedure itself** (``benchmarks/reference_dci.py``: the
reference's ``_fit_random_forest`` loop, ``cross_val_score`` per grid point, refit, ``1 − 12·MSE``,
serial, forests drawing from numpy's global RNG) side by side with ``mixeval``'s ``dci`` (numba
forests — the default —, sklearn forests, and ``share_deep_fits=True``) on the same data, each over ``--dci-seeds`` seeds, and print wall time
per factor, the ratio to the reference and Expl / D / C as mean ± std over the seeds, so "within
seed noise" can be read off. The reference grid costs 201 forest fits per factor (~0.5–5 s each at
2048 codes on a loaded 2-core machine), so only ``--dci-factors`` factors are run and the time per
factor is reported (factors are fitted independently; multiply by 20 for the full job).
``--quick`` (about a minute): DCI on 16 codes, 2 factors, 2 seeds, grid {8, 64} x {0.4, 1.0}; ``--quick`` times the
naive pairwise loops on the first 64 codes and scales the time linearly to
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
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.preprocessing import minmax_scale

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixeval.metrics.disentangle import dci, dcimig, mig, sap  # noqa: E402
from mixeval.metrics.information import discretize, mutual_information_matrix  # noqa: E402
from benchmarks.reference_dci import REFERENCE_DEPTHS, REFERENCE_MAX_FEATURES, reference_dci  # noqa: E402

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
    ap.add_argument("--quick", action="store_true", help="DCI: 16 codes, 2 factors, 2 seeds, 2x2 grid; naive loops on 64 codes")
    ap.add_argument("--factors", type=int, default=20)
    ap.add_argument("--codes", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=250)
    ap.add_argument("--dci-factors", type=int, default=2, help="factors used for the DCI rows (≥ 2: D needs them)")
    ap.add_argument("--dci-codes", type=int, default=0, help="codes used for the DCI rows (0 = all)")
    ap.add_argument("--dci-seeds", type=int, default=2, help="seeds per DCI method (mean ± std)")
    ap.add_argument("--only-dci", action="store_true", help="skip the information-metric rows")
    ap.add_argument("--n-jobs", type=int, default=-1, help="DCI workers (-1 = all cores)")
    ap.add_argument("--skip-sklearn-backend", action="store_true", help="DCI: leave out the sklearn-backend row")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.dci_factors < 2:
        ap.error("--dci-factors: expected ≥ 2 (D and the reference's log base need two factors)")
    if args.quick:
        args.dci_codes, args.dci_factors, args.dci_seeds = args.dci_codes or 16, 2, 2

    rng = np.random.default_rng(args.seed)
    n, k, l = args.samples, args.factors, args.codes
    factors = rng.uniform(size=(n, k))
    codes = (factors @ rng.normal(size=(k, l)) + rng.normal(size=(n, l))).astype(np.float32)
    print(f"data: {n} samples x {k} factors x {l} codes (float32); {os.cpu_count()} CPU cores; quick={args.quick}")

    rows = []
    if args.only_dci:
        dci_table(factors[:, : min(args.dci_factors, k)], codes[:, : args.dci_codes or l], args)
        return 0
    sub = min(l, 64) if args.quick else l  # codes seen by the naive pairwise loops
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

    print(f"\n{'metric':<24}{'mixeval [s]':>13}{'naive [s]':>13}{'speed-up':>10}{'max |diff|':>12}")
    for name, t_o, t_n, mark, d in rows:
        print(f"{name:<24}{t_o:>13.4f}{t_n:>12.3f}{mark or ' '}{t_n / t_o:>9.1f}x{d:>12.1e}")
    if args.quick and sub < l:
        print(f"* naive loop timed on the first {sub} of {l} codes and scaled x{scale:g} (linear in codes);"
              " max |diff| compares both on those codes")
    dci_table(factors[:, : min(args.dci_factors, k)], codes[:, : args.dci_codes or l], args)
    return 0


def dci_table(factors: np.ndarray, codes: np.ndarray, args) -> None:
    """Reference procedure vs mixeval's dci on the reference grid: time per factor, ratio, Expl/D/C."""
    n, kd = factors.shape
    grid = dict(max_depths=(8, 64), max_features=(0.4, 1.0)) if args.quick else {}
    mds, mfs = grid.get("max_depths", REFERENCE_DEPTHS), grid.get("max_features", REFERENCE_MAX_FEATURES)
    print(f"\nDCI-RF, grid {mds} x {mfs} x 10 folds, {n} samples x "
          f"{codes.shape[1]} codes x {kd} factor(s), seeds 0..{args.dci_seeds - 1}, n_jobs={args.n_jobs}", flush=True)
    methods = {
        "reference procedure": lambda s: reference_dci(factors, codes, seed=s, **grid),
        "mixeval dci (numba)": lambda s: dci(factors, codes, seed=s, n_jobs=args.n_jobs, backend="numba", **grid),
        "mixeval dci (sklearn)": lambda s: dci(factors, codes, seed=s, n_jobs=args.n_jobs, backend="sklearn", **grid),
        "mixeval share_deep_fits": lambda s: dci(
            factors, codes, seed=s, n_jobs=args.n_jobs, share_deep_fits=True, backend="numba", **grid
        ),
    }
    if args.skip_sklearn_backend:
        del methods["mixeval dci (sklearn)"]
    dci(factors[:30], codes[:30, :4], max_depths=(3,), max_features=(1.0,), n_splits=0, backend="numba")  # compile
    results = {}
    for name, fn in methods.items():
        times, scores, depths = [], [], []
        for s in range(args.dci_seeds):
            t0 = time.perf_counter()
            out = fn(s)
            times.append(time.perf_counter() - t0)
            if isinstance(out, dict):
                scores.append((out["I"], out["D"], out["C"]))
                depths += [b[0] for b in out["best"]]
            else:
                scores.append((out.informativeness, out.disentanglement, out.completeness))
                depths += [b[0] for b in out.best_params]
            print(f"  {name} seed {s}: {times[-1]:.1f} s, Expl {scores[-1][0]:.3f}", flush=True)
        results[name] = (np.mean(times) / kd, np.array(scores), depths)
    t_ref = results["reference procedure"][0]
    print(f"\n{'DCI-RF':<26}{'s/factor':>10}{'ratio':>8}{'Expl':>16}{'D (Mod)':>16}{'C (Comp)':>16}  depth 8 picked")
    for name, (t, sc, depths) in results.items():
        sds = sc.std(axis=0, ddof=1) if len(sc) > 1 else [math.nan] * 3
        cells = "".join(f"{m:>9.3f} ± {sd:.3f}" if sd == sd else f"{m:>9.3f} ±   –  " for m, sd in zip(sc.mean(axis=0), sds))
        print(f"{name:<26}{t:>10.1f}{t_ref / t:>7.2f}x{cells}  {sum(d == 8 for d in depths)}/{len(depths)}")
    print(f"(std over {args.dci_seeds} seeds; {os.cpu_count()} CPU cores; the full 20-factor job ≈ 20 x s/factor)")


if __name__ == "__main__":
    raise SystemExit(main())
