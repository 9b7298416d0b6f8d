"""The reference's DCI-RF procedure, re-implemented loop for loop for timing and comparison.

Written from the description in /work/shared/reference/metrics_notes.md §2 (ubisoft
``src/metrics/dci.py``, ``_fit_random_forest``), not copied: per factor, every grid point is scored
with ``cross_val_score(RandomForestRegressor(n_estimators=10, max_depth=d, max_features=m), codes,
factor, cv=10, scoring="neg_mean_squared_error")`` (unshuffled ``KFold``), the lowest mean MSE wins
(strict ``<``), the winner is refitted on all rows and scored in-sample with ``max(1 − 12·MSE, 0)``;
its impurity importances give D and C. The forests draw from numpy's global random state, as in
the reference (``random_state=None``); :func:`reference_dci` seeds that state once so runs repeat.
D is computed without the reference's ``break`` bug (as ``mixeval``'s default), C as in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import minmax_scale

REFERENCE_DEPTHS = (8, 16, 32, 64, 128)
REFERENCE_MAX_FEATURES = (0.2, 0.4, 0.8, 1.0)


def fit_random_forest(codes, factor, max_depths, max_features, n_estimators: int = 10, n_splits: int = 10):
    """One factor: ``(informativeness, importances, (best_depth, best_max_features))``."""
    best, best_mse = None, 10e10
    for md in max_depths:
        for mf in max_features:
            clf = RandomForestRegressor(n_estimators=n_estimators, max_depth=md, max_features=mf)
            mse = -cross_val_score(clf, codes, factor, cv=n_splits, scoring="neg_mean_squared_error").mean()
            if mse < best_mse:
                best, best_mse = (md, mf), mse
    clf = RandomForestRegressor(n_estimators=n_estimators, max_depth=best[0], max_features=best[1])
    clf.fit(codes, factor)
    info = max(1 - 12 * mean_squared_error(clf.predict(codes), factor), 0)
    return info, np.clip(clf.feature_importances_, 0, None), best


def reference_dci(
    factors: np.ndarray,
    codes: np.ndarray,
    *,
    seed: int,
    max_depths: Sequence[int] = REFERENCE_DEPTHS,
    max_features: Sequence[float] = REFERENCE_MAX_FEATURES,
    n_estimators: int = 10,
    n_splits: int = 10,
) -> dict:
    """The reference procedure on all factors: ``{"D", "C", "I", "best"}`` (``best``: per-factor grid point)."""
    np.random.seed(seed)  # the reference's forests use the global state (random_state=None)
    f, c = minmax_scale(factors), minmax_scale(codes)
    k, l = f.shape[1], c.shape[1]
    e = np.zeros((k, l))
    info = np.zeros(k)
    best = []
    for j in range(k):
        info[j], e[j], b = fit_random_forest(c, f[:, j], max_depths, max_features, n_estimators, n_splits)
        best.append(b)
    rho = e.sum(axis=0)
    d = np.zeros(l)
    for i in range(l):
        if rho[i] > 0:
            d[i] = 1 + sum(p * math.log(p, k) for p in e[:, i] / rho[i] if p > 0)
    comp = [1 + sum(p * math.log(p, l) for p in e[j] / e[j].sum() if p > 0) for j in range(k)]
    return {"D": float(np.dot(d, rho / rho.sum())), "C": float(np.mean(comp)), "I": float(info.mean()), "best": best}
