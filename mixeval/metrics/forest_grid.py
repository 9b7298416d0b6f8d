"""DCI's random-forest grid search: cross-validated MSE of every (max_depth, max_features) point.

The reference (ubisoft ``dci.py``, ``_fit_random_forest``) fits one
``RandomForestRegressor(n_estimators=10, max_depth=d, max_features=m)`` per grid point and fold,
each from numpy's global random state. Here every fit gets an explicit seed; optionally
(:func:`depth_classes` with ``share_deep=True``) one fit serves several depth limits when it
provably equals them.

Exact reuse rule: sklearn's depth-first tree builder only consults ``max_depth`` when it is about
to split a node at depth ``max_depth``; if no tree of a forest fitted with limit ``D`` and seed
``s`` reaches depth ``d < D`` (every ``tree_.max_depth < d``), the builder never hit the limit, drew
the same random numbers, and the forest with limit ``d`` and seed ``s`` is the same forest
(same splits, same predictions, same importances). So within a *seed class* (depths that share
a seed) the deepest limit is fitted first and a shallower one is refitted only when the trees
reached it. (The rule holds for both backends: each consults the limit only before splitting.)

Backends (:func:`grid_codes`): ``"numba"`` fits :mod:`mixeval.metrics.random_forest` (sklearn's
forest law on codes presorted once per call, several times faster per core); ``"sklearn"`` fits
``sklearn.ensemble.RandomForestRegressor``; ``"auto"`` takes numba when it imports.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils.parallel import Parallel

from mixfx.progress import ProgressFn

__all__ = [
    "GridCodes",
    "depth_classes",
    "fold_mse_by_depth",
    "forest_seeds",
    "grid_codes",
    "reached_depth",
    "refit_forest",
    "resolve_backend",
    "run_fits",
    "workers",
]

BACKENDS = ("auto", "numba", "sklearn")


def depth_classes(max_depths: Sequence[int], n_train: int, *, share_deep: bool = False) -> tuple[int, ...]:
    """Seed class of each depth limit (limits of one class share a seed, hence possibly one fit).

    ``share_deep=False`` (default, the reference's joint law): every distinct limit has its own class,
    so all grid points are independent draws, as the reference's unseeded forests are.

    ``share_deep=True``: limits ``d ≥ 2·⌈log2 n_train⌉`` share class 0, each shallower limit keeps
    its own. Random-forest trees on ``n`` rows are usually 1.5–2× ``log2 n`` deep (≈ 11–16 for 225
    rows), so the shared class collects the limits the trees rarely reach and one fit serves them all
    (exact, see the module docstring). Each grid point's forest is still an exact draw of sklearn's
    forest with its own limit, because the classes depend only on the grid and the number of rows,
    never on a fit's outcome (a rule such as "use the deep fit for ``d`` if it did not reach ``d``,
    else a fresh seed" keeps the deep fit exactly when it is shallow: the limit-``d`` forest would be
    untruncated with probability ``2p − p²`` instead of ``p``). But shared limits no tree reaches
    score *identically* where the reference draws them independently, so the minimum over the grid
    sees fewer deep candidates: on noise codes the selection drifts to the shallow limits and the
    in-sample Expl drops by more than its seed noise (measured, see ``benchmarks/bench_metrics.py``).

    Returns:
        One int per entry of ``max_depths``: the index of its class.
    """
    deep_from = 2 * math.ceil(math.log2(max(int(n_train), 2))) if share_deep else math.inf
    own = sorted({int(d) for d in max_depths if int(d) < deep_from})
    return tuple(0 if int(d) >= deep_from else 1 + own.index(int(d)) for d in max_depths)


def forest_seeds(
    seed: int | None, n_factors: int, n_max_features: int, n_splits: int, n_classes: int, n_grid: int
) -> tuple[np.ndarray, np.ndarray]:
    """``random_state`` of every forest fit: per (factor, max_features, fold, seed class) and per refit.

    CV fit ``[j, m, f, c]`` gets ``SeedSequence(seed, spawn_key=(0, j, m, f, c)).generate_state(1)[0]``
    (uint32) and the refit of factor ``j`` at grid point ``g`` on all samples ``spawn_key=(1, j, g)``,
    so the refit depends neither on ``n_splits`` nor on the CV draws. Distinct streams make grid points
    of different classes, different ``max_features`` and different folds independent draws.

    Args:
        seed: the user's seed (None: fresh OS entropy, shared by all entries).
        n_factors, n_max_features, n_splits, n_classes, n_grid: sizes.

    Returns:
        ``(cv, refit)``: int64 arrays ``(n_factors, n_max_features, n_splits, n_classes)`` and
        ``(n_factors, n_grid)``.
    """
    root = np.random.SeedSequence(seed).entropy

    def draw(key: tuple[int, ...]) -> int:
        return int(np.random.SeedSequence(root, spawn_key=key).generate_state(1)[0])

    cv = np.empty((n_factors, n_max_features, n_splits, n_classes), dtype=np.int64)
    for idx in np.ndindex(cv.shape):
        cv[idx] = draw((0, *idx))
    refit = np.empty((n_factors, n_grid), dtype=np.int64)
    for idx in np.ndindex(refit.shape):
        refit[idx] = draw((1, *idx))
    return cv, refit


@dataclass(frozen=True)
class GridCodes:
    """The min-max-scaled codes of one DCI call, as the chosen backend reads them.

    ``x``: ``(n_rows, n_codes)`` float32; ``presorted``: ``(xt, order)`` from
    :func:`mixeval.metrics.random_forest.presort` for the numba backend, None for sklearn.
    """

    x: np.ndarray
    presorted: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def backend(self) -> str:
        return "sklearn" if self.presorted is None else "numba"


def _numba_forest():
    try:
        from mixeval.metrics import random_forest
    except ImportError:  # numba missing or broken (it does not import on some GPU images)
        return None
    return random_forest


def resolve_backend(backend: str = "auto") -> str:
    """``"numba"`` or ``"sklearn"``: what ``backend`` means on this machine.

    Raises:
        ValueError: unknown name, or ``"numba"`` when numba does not import.
    """
    if backend not in BACKENDS:
        raise ValueError(f"forest backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "sklearn":
        return backend
    if _numba_forest() is None:
        if backend == "numba":
            raise ValueError("forest backend 'numba': numba does not import here; use 'sklearn' or 'auto'")
        return "sklearn"
    return "numba"


def grid_codes(x: np.ndarray, backend: str = "auto") -> GridCodes:
    """Prepare codes for :func:`fold_mse_by_depth` / :func:`refit_forest` (presorting them once).

    Args:
        x: ``(n_rows, n_codes)`` codes (already scaled).
        backend: ``"auto"`` (numba if it imports, else sklearn), ``"numba"`` or ``"sklearn"``.

    Raises:
        ValueError: unknown backend, or ``"numba"`` when numba does not import.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if resolve_backend(backend) == "sklearn":
        return GridCodes(x)
    return GridCodes(x, _numba_forest().presort(x))


def _as_codes(x: GridCodes | np.ndarray) -> GridCodes:
    """``x`` itself, or a plain code array on the sklearn backend."""
    return x if isinstance(x, GridCodes) else GridCodes(np.ascontiguousarray(x, dtype=np.float32))


def _forest(max_depth: int, max_features: float, n_estimators: int, seed: int) -> RandomForestRegressor:
    return RandomForestRegressor(
        n_estimators=n_estimators, max_depth=max_depth, max_features=max_features, random_state=seed, n_jobs=1
    )


def fit_on_rows(codes: GridCodes, y, rows, max_depth, max_features, n_estimators, seed):
    """Fit one forest on ``rows`` (the one place both backends are called); returns the fitted model."""
    if codes.presorted is None:
        with sklearn.config_context(skip_parameter_validation=True):
            return _forest(max_depth, max_features, n_estimators, seed).fit(codes.x[rows], y[rows])
    xt, order = codes.presorted
    return _numba_forest().fit_forest(
        xt, order, y, rows, max_depth=max_depth, max_features=max_features, n_estimators=n_estimators, seed=seed
    )


def _predict(codes: GridCodes, model, rows) -> np.ndarray:
    if codes.presorted is None:
        return model.predict(codes.x[rows])
    return _numba_forest().predict_forest(model, codes.presorted[0], rows)


def reached_depth(model) -> int:
    """Depth of the deepest tree of a fitted forest (the root is depth 0), either backend."""
    if isinstance(model, RandomForestRegressor):
        return max(int(tree.tree_.max_depth) for tree in model.estimators_)
    return int(model.depth.max())


def fold_mse_by_depth(
    x: GridCodes | np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    max_depths: Sequence[int],
    classes: Sequence[int],
    max_features: float,
    n_estimators: int,
    class_seeds: Sequence[int],
) -> np.ndarray:
    """Held-out MSE on ``test`` of the forest fitted on ``train`` for every depth limit of one fold.

    Depth ``max_depths[i]`` uses seed ``class_seeds[classes[i]]``. Within a class the limits are
    visited from the deepest down; a forest is reused for a shallower limit ``d`` when its trees did
    not reach ``d`` (then it *is* sklearn's forest with limit ``d`` and that seed), else refitted.

    ``x``: :func:`grid_codes` (a plain array means the sklearn backend).

    Returns:
        ``(len(max_depths),)`` mean squared errors.
    """
    codes = _as_codes(x)
    out = np.empty(len(max_depths))
    yv = y[test]
    for c in sorted(set(classes)):
        members = sorted((i for i, k in enumerate(classes) if k == c), key=lambda i: -int(max_depths[i]))
        reached, mse = None, 0.0
        for i in members:
            d = int(max_depths[i])
            if reached is None or reached >= d:
                model = fit_on_rows(codes, y, train, d, max_features, n_estimators, int(class_seeds[c]))
                reached = reached_depth(model)
                mse = float(np.mean((_predict(codes, model, test) - yv) ** 2))
            out[i] = mse
    return out


def refit_forest(x: GridCodes | np.ndarray, y, max_depth, max_features, n_estimators, seed) -> tuple[float, np.ndarray]:
    """In-sample MSE and impurity importances of the forest fitted on all rows."""
    codes = _as_codes(x)
    rows = np.arange(codes.x.shape[0])
    model = fit_on_rows(codes, y, rows, max_depth, max_features, n_estimators, seed)
    weights = model.feature_importances_ if codes.presorted is None else model.importances
    return float(np.mean((_predict(codes, model, rows) - y) ** 2)), np.asarray(weights, dtype=np.float64)


def workers(n_jobs: int | None, n_tasks: int, work: float) -> int:
    """Threads for the fits: ``n_jobs`` (-1 = all cores), but in-process serial when the job is small.

    ``work`` estimates the cost in row·feature·tree units; below 2e7 (≈ a second of fitting) the
    thread start-up is not worth it and everything runs in the calling thread.
    """
    if n_jobs is None or n_jobs == 1 or n_tasks < 2 or work < 2e7:
        return 1
    cores = os.cpu_count() or 1
    wanted = cores if n_jobs < 0 else n_jobs
    return max(1, min(int(wanted), n_tasks))


def run_fits(tasks: list, n_jobs: int, progress: ProgressFn | None, done: int, total: int) -> list:
    """Run joblib ``tasks`` in ``n_jobs`` threads, in order, calling ``progress(done, total, "forest fits")``
    after each (``done`` counts on from the given value)."""
    out = []
    for res in Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(tasks):
        out.append(res)
        done += 1
        if progress is not None:
            progress(done, total, "forest fits")
    return out
