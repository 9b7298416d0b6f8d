"""A random-forest regressor for DCI's grid search: sklearn's algorithm on presorted codes, in numba.

DCI-RF fits ``RandomForestRegressor(n_estimators=10, max_depth=d, max_features=m)`` about 200 times
per factor on the *same* few hundred rows of 2048 codes. sklearn sorts every candidate feature at
every node again; here the rows are sorted once per code column (:func:`presort`) and each tree
keeps, for every code, its nodes' rows in sorted order, stably partitioning those lists when a node
splits (the classic presorted exact algorithm). The split search is then a linear scan.

The fitted forests follow sklearn's ``RandomForestRegressor`` law (squared error, ``bootstrap=True``,
``min_samples_split=2``, ``min_samples_leaf=1``, no ``max_samples``), written from its documented
behaviour and its open source (``sklearn/tree/_splitter.pyx``, ``_tree.pyx``, ``ensemble/_forest.py``,
read for facts), not translated from it:

* bootstrap: ``n`` draws with replacement from the ``n`` rows, kept as integer weights; rows drawn
  zero times take no part (``n_node_samples`` counts distinct rows, weights count draws);
* a node is a leaf when its depth is ``max_depth``, it has fewer than 2 distinct rows, or its
  weighted variance is ≤ machine epsilon;
* candidate codes: a uniformly random walk over all codes without replacement; every step counts
  as a visit, codes constant on the node (max − min ≤ 1e-7 in float32) are skipped, and the walk
  stops after ``max(1, int(max_features·n_codes))`` visits once at least one non-constant code was
  evaluated (sklearn's Fisher–Yates loop with its known- and found-constant bookkeeping has this
  law);
* each evaluated code: every position between two values more than 1e-7 apart, score
  ``S_L²/W_L + S_R²/W_R``, the first strict maximum in walk order then position order wins; the
  threshold is the mean of the two values (``a/2 + b/2`` in float64); rows with ``x ≤ t`` go left;
* impurity importances as ``Tree.compute_feature_importances`` (each tree normalised to sum 1,
  the forest the normalised mean over trees that split at least once).

Only the random number generator differs (a counter-based SplitMix64 stream per tree instead of
sklearn's ``RandomState`` / ``rand_r``), so forests are equal in distribution, not bit for bit; with
every code evaluated and no bootstrap (``fit_forest(..., max_features=1.0, bootstrap=False)``) the partition of the
training rows equals sklearn's ``DecisionTreeRegressor`` (tested). Everything runs without the GIL,
so threads fit several forests at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["Forest", "fit_forest", "presort", "predict_forest"]

_FEATURE_THRESHOLD = np.float32(1e-7)
_EPSILON = np.finfo(np.float64).eps
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def presort(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes as the forest reads them: ``(xt, order)``.

    Args:
        x: ``(n_rows, n_codes)`` codes.

    Returns:
        ``xt``: ``(n_codes, n_rows)`` float32 (what sklearn's trees compare in), and ``order``:
        ``(n_codes, n_rows)`` int32, each code's rows sorted by value (stable).
    """
    xt = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
    order = np.ascontiguousarray(np.argsort(xt, axis=1, kind="stable").astype(np.int32))
    return xt, order


@dataclass(frozen=True)
class Forest:
    """Fitted trees as flat arrays ``(n_trees, max_nodes)``; a leaf has ``left == -1``."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: np.ndarray  # (n_trees,) deepest node of each tree (root = 0)
    importances: np.ndarray  # (n_codes,) impurity importances, normalised to sum 1 (or all 0)


@njit(cache=True, nogil=True, inline="always")
def _next(state):
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def _below(state, n):
    """Uniform integer in [0, n) (bias ≤ n / 2⁶⁴)."""
    return np.int64(_next(state) % np.uint64(n))


@njit(cache=True, nogil=True)
def _build_tree(xt, order, y, w, max_depth, max_features, state, feature, threshold, left, right, value, imp):
    """Grow one tree on the rows with ``w > 0``; fill the node arrays; return (node count, depth)."""
    p, n = xt.shape
    keep = (w > 0).astype(np.int64)
    m = keep.sum()
    idx = np.empty((p, m), dtype=np.int32)
    spill = np.empty(n + 1, dtype=np.int32)
    for f in range(p):  # branch-free filtering (which rows were drawn is unpredictable)
        k = 0
        for j in range(n):
            r = order[f, j]
            spill[k] = r
            k += keep[r]
        for j in range(m):
            idx[f, j] = spill[j]
    perm = np.arange(p, dtype=np.int64)
    wy = w * y
    side = np.zeros(n, dtype=np.int64)  # 1 while a row goes left at the split being applied
    buf = np.empty(m, dtype=np.int32)
    node_w = np.empty(2 * m, dtype=np.float64)
    node_imp = np.empty(2 * m, dtype=np.float64)
    # stack of (start, end, depth, node id); children are reserved when the parent splits
    st_start = np.empty(2 * m, dtype=np.int64)
    st_end = np.empty(2 * m, dtype=np.int64)
    st_depth = np.empty(2 * m, dtype=np.int64)
    st_node = np.empty(2 * m, dtype=np.int64)
    st_start[0], st_end[0], st_depth[0], st_node[0] = 0, m, 0, 0
    top = 1
    n_nodes = 1
    deepest = 0
    while top > 0:
        top -= 1
        start, end, depth, node = st_start[top], st_end[top], st_depth[top], st_node[top]
        if depth > deepest:
            deepest = depth
        ww = 0.0
        s = 0.0
        q = 0.0
        for j in range(start, end):
            r = idx[0, j]
            ww += w[r]
            s += wy[r]
            q += wy[r] * y[r]
        mean = s / ww
        if node == 0:
            impurity = q / ww - mean * mean
            node_imp[0] = impurity
        else:
            impurity = node_imp[node]  # as the parent's split computed it (what sklearn keeps)
        node_w[node] = ww
        value[node] = mean
        left[node] = -1
        right[node] = -1
        feature[node] = -1
        threshold[node] = -2.0
        if depth >= max_depth or end - start < 2 or impurity <= _EPSILON:
            continue
        best_proxy = -np.inf
        best_f = -1
        best_pos = end
        best_t = 0.0
        visited = 0
        evaluated = 0
        k = 0
        while k < p and (visited < max_features or evaluated == 0):
            j = k + _below(state, p - k)
            f = perm[j]
            perm[j] = perm[k]
            perm[k] = f
            k += 1
            visited += 1
            lo = xt[f, idx[f, start]]
            hi = xt[f, idx[f, end - 1]]
            if hi <= lo + _FEATURE_THRESHOLD:
                continue
            evaluated += 1
            seg = idx[f]
            xf = xt[f]
            wl = 0.0
            sl = 0.0
            prev = lo
            r = seg[start]
            for pos in range(start + 1, end):
                wl += w[r]
                sl += wy[r]
                r = seg[pos]
                cur = xf[r]
                if cur > prev + _FEATURE_THRESHOLD:
                    wr = ww - wl
                    sr = s - sl
                    # S_L²/W_L + S_R²/W_R > best, multiplied out by W_L·W_R > 0 (no division in the scan)
                    num = sl * sl * wr + sr * sr * wl
                    den = wl * wr
                    if num > best_proxy * den:
                        best_proxy = num / den
                        best_f = f
                        best_pos = pos
                        best_t = np.float64(prev) / 2.0 + np.float64(cur) / 2.0
                prev = cur
        if best_pos >= end:
            continue
        wl = 0.0
        sl = 0.0
        ql = 0.0
        for j in range(start, best_pos):
            r = idx[best_f, j]
            side[r] = 1
            wl += w[r]
            sl += wy[r]
            ql += wy[r] * y[r]
        wr = ww - wl
        imp_l = ql / wl - (sl / wl) ** 2
        imp_r = (q - ql) / wr - ((s - sl) / wr) ** 2
        improvement = (ww / node_w[0]) * (impurity - wr / ww * imp_r - wl / ww * imp_l)
        if improvement + _EPSILON < 0.0:  # sklearn's test against min_impurity_decrease = 0
            for j in range(start, best_pos):
                side[idx[best_f, j]] = 0
            continue
        for f in range(p):  # stable partition, branch-free (the side of each row is unpredictable)
            a = start
            b = 0
            for j in range(start, end):
                r = idx[f, j]
                g = side[r]
                idx[f, a] = r
                buf[b] = r
                a += g
                b += 1 - g
            for j in range(b):
                idx[f, a + j] = buf[j]
        for j in range(start, best_pos):
            side[idx[0, j]] = 0
        feature[node] = best_f
        threshold[node] = best_t
        lc = n_nodes
        rc = n_nodes + 1
        n_nodes += 2
        left[node] = lc
        right[node] = rc
        # children impurities as the split computed them (sklearn stores these, not a recomputation)
        node_imp[lc] = imp_l
        node_imp[rc] = imp_r
        st_start[top], st_end[top], st_depth[top], st_node[top] = best_pos, end, depth + 1, rc
        top += 1
        st_start[top], st_end[top], st_depth[top], st_node[top] = start, best_pos, depth + 1, lc
        top += 1
    # importances: Σ over splits of W·imp − W_l·imp_l − W_r·imp_r, / W_root, normalised
    for node in range(n_nodes):
        if left[node] >= 0:
            lc = left[node]
            rc = right[node]
            imp[feature[node]] += node_w[node] * node_imp[node] - node_w[lc] * node_imp[lc] - node_w[rc] * node_imp[rc]
    return n_nodes, deepest


@njit(cache=True, nogil=True)
def _fit_forest(xt, order, y, rows, max_depth, max_features, n_estimators, seed, bootstrap, feature, threshold, left, right, value, depth, importances):
    p, n = xt.shape
    n_rows = rows.shape[0]
    state = np.empty(1, dtype=np.uint64)
    w = np.zeros(n, dtype=np.float64)
    tree_imp = np.zeros(p, dtype=np.float64)
    for t in range(n_estimators):
        state[0] = np.uint64(seed) * _GOLDEN + np.uint64(t + 1)
        _next(state)
        w[:] = 0.0
        for i in range(n_rows):
            if bootstrap:
                w[rows[_below(state, n_rows)]] += 1.0
            else:
                w[rows[i]] = 1.0
        tree_imp[:] = 0.0
        count, deepest = _build_tree(
            xt, order, y, w, max_depth, max_features, state,
            feature[t], threshold[t], left[t], right[t], value[t], tree_imp,
        )
        depth[t] = deepest
        if count > 1:  # each tree normalised to sum 1, the forest the normalised sum over trees that split
            if tree_imp.sum() > 0.0:
                importances += tree_imp / tree_imp.sum()
    if importances.sum() > 0.0:
        importances /= importances.sum()


def fit_forest(
    xt: np.ndarray,
    order: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    *,
    max_depth: int,
    max_features: float,
    n_estimators: int = 10,
    seed: int = 0,
    bootstrap: bool = True,
) -> Forest:
    """Fit a random forest on ``rows`` of presorted codes (:func:`presort`).

    Args:
        xt, order: from :func:`presort` (all rows; the forest uses only ``rows``).
        y: ``(n_rows,)`` targets for all rows.
        rows: indices of the training rows (e.g. one CV fold's training part).
        max_depth: depth limit (root = 0).
        max_features: fraction of the codes visited per node (sklearn's float ``max_features``).
        n_estimators: trees.
        seed: the forest's random stream (any non-negative int).
        bootstrap: draw each tree's rows with replacement (sklearn's default); False uses every
            row once (with ``max_features=1.0`` the trees are then deterministic up to ties).

    Returns:
        :class:`Forest`.
    """
    p = xt.shape[0]
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    nodes = max(2 * len(rows), 1)
    shape = (int(n_estimators), nodes)
    feature = np.full(shape, -1, dtype=np.int64)
    threshold = np.full(shape, -2.0)
    left = np.full(shape, -1, dtype=np.int64)
    right = np.full(shape, -1, dtype=np.int64)
    value = np.zeros(shape)
    depth = np.zeros(int(n_estimators), dtype=np.int64)
    importances = np.zeros(p)
    mf = max(1, int(float(max_features) * p))
    _fit_forest(
        xt, order, np.ascontiguousarray(y, dtype=np.float64), rows, int(max_depth), mf, int(n_estimators),
        int(seed) & 0xFFFFFFFFFFFF, bool(bootstrap), feature, threshold, left, right, value, depth, importances,
    )
    return Forest(feature, threshold, left, right, value, depth, importances)


@njit(cache=True, nogil=True)
def _predict(feature, threshold, left, right, value, xt, rows, out):
    n_trees = feature.shape[0]
    for i in range(rows.shape[0]):
        r = rows[i]
        acc = 0.0
        for t in range(n_trees):
            node = 0
            while left[t, node] >= 0:
                if np.float64(xt[feature[t, node], r]) <= threshold[t, node]:
                    node = left[t, node]
                else:
                    node = right[t, node]
            acc += value[t, node]
        out[i] = acc / n_trees


def predict_forest(forest: Forest, xt: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean of the trees' predictions for ``rows`` of ``xt`` (:func:`presort`'s first output)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty(len(rows))
    _predict(forest.feature, forest.threshold, forest.left, forest.right, forest.value, xt, rows, out)
    return out
