"""mixeval.metrics.random_forest: sklearn's random-forest law on presorted codes.

Reference: scikit-learn itself. With every code evaluated and no bootstrap a tree is deterministic
up to ties, so it must partition the training rows exactly as ``DecisionTreeRegressor``; the random
parts (bootstrap, candidate codes, constant codes counting as visits) are compared with
``RandomForestRegressor`` in distribution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

rf = pytest.importorskip("mixeval.metrics.random_forest")


def _data(seed: int, n: int = 120, p: int = 30):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)).astype(np.float32)
    x[:, :5] = rng.integers(0, 4, size=(n, 5))  # tied values: splits only between distinct values
    y = np.sin(2 * x[:, 6]) + x[:, 0] + 0.3 * rng.normal(size=n)
    return x, y


@pytest.mark.parametrize("max_depth", [3, 8, 1000])
def test_tree_without_randomness_partitions_rows_as_sklearn(max_depth):
    for seed in range(3):
        x, y = _data(seed)
        xt, order = rf.presort(x)
        rows = np.arange(len(y))
        ours = rf.fit_forest(xt, order, y, rows, max_depth=max_depth, max_features=1.0, n_estimators=1, bootstrap=False)
        sk = DecisionTreeRegressor(max_depth=max_depth, random_state=seed).fit(x, y)
        np.testing.assert_allclose(rf.predict_forest(ours, xt, rows), sk.predict(x), rtol=0, atol=1e-12)
        assert int((ours.left[0] >= 0).sum()) == sk.tree_.node_count // 2  # internal nodes
        assert int(ours.depth[0]) == sk.tree_.max_depth
        if max_depth == 3:  # shallow: no two codes give the same partition, so the chosen codes agree too
            np.testing.assert_allclose(ours.importances, sk.feature_importances_, atol=1e-12)
            used = sorted(set(ours.feature[0][ours.left[0] >= 0].tolist()))
            assert used == sorted(set(sk.tree_.feature[sk.tree_.feature >= 0].tolist()))


def test_thresholds_are_midpoints_and_unseen_rows_follow_them():
    """A one-split tree: threshold halfway between the two values around the split, x <= t goes left."""
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]], dtype=np.float32)
    y = np.array([0.0, 0.0, 0.0, 5.0, 5.0])
    xt, order = rf.presort(x)
    tree = rf.fit_forest(xt, order, y, np.arange(5), max_depth=1, max_features=1.0, n_estimators=1, bootstrap=False)
    assert tree.threshold[0, 0] == 6.0 and tree.feature[0, 0] == 0
    probe_t, probe_o = rf.presort(np.array([[5.9], [6.0], [6.1]], dtype=np.float32))
    np.testing.assert_array_equal(rf.predict_forest(tree, probe_t, np.arange(3)), [0.0, 0.0, 5.0])
    assert tree.importances.tolist() == [1.0]


def _root_feature_counts(fit_roots, n_forests: int) -> np.ndarray:
    counts = np.zeros(12)
    for s in range(n_forests):
        for f in fit_roots(s):
            counts[f] += 1
    return counts


def test_candidate_codes_follow_sklearns_law():
    """Only code 0 explains y, so a root splits on it iff 0 is among the codes evaluated there.

    6 of 12 codes vary, codes 6–11 are constant, max_features = 0.25 → 3 visits per node, and
    constant codes count as visits (sklearn). By hand: the walk is a uniform order; code 0 is
    evaluated if it is among the first 3 (3/12), or if those 3 are all constant (C(6,3)/C(12,3) =
    20/220) and it is the first varying code after them (1/6): P = 0.25 + 20/1320 ≈ 0.265.
    (Skipping constants without counting them would give 3/6 = 0.5.)
    """
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 12)).astype(np.float32)
    x[:, 6:] = 1.0
    y = (x[:, 0] > 0).astype(float) + 0.01 * rng.normal(size=200)
    xt, order = rf.presort(x)
    rows = np.arange(200)

    def ours(s):
        forest = rf.fit_forest(xt, order, y, rows, max_depth=1, max_features=0.25, n_estimators=50, seed=s)
        return forest.feature[:, 0]

    def sklearn_roots(s):
        forest = RandomForestRegressor(50, max_depth=1, max_features=0.25, random_state=s).fit(x, y)
        return [t.tree_.feature[0] for t in forest.estimators_]

    n = 1000
    got, ref = _root_feature_counts(ours, 20) / n, _root_feature_counts(sklearn_roots, 20) / n
    expected = 0.25 + 20 / 1320
    sd = math.sqrt(expected * (1 - expected) / n)  # 0.014
    assert abs(got[0] - expected) < 4 * sd and abs(ref[0] - expected) < 4 * sd
    assert got[6:].sum() == 0 and ref[6:].sum() == 0
    # the other roots are spread over the 5 noise codes the same way (≈ 0.735 / 5 each)
    assert np.abs(got[1:6] - ref[1:6]).max() < 0.06


def test_all_constant_visits_keep_walking_to_a_varying_code():
    """max_features = 1 visit with 11 of 12 codes constant: sklearn keeps drawing until code 0 is found."""
    rng = np.random.default_rng(4)
    x = np.ones((60, 12), dtype=np.float32)
    x[:, 0] = rng.normal(size=60)
    y = x[:, 0] + 0.1 * rng.normal(size=60)
    xt, order = rf.presort(x)
    forest = rf.fit_forest(xt, order, y, np.arange(60), max_depth=2, max_features=0.01, n_estimators=20, seed=1)
    assert (forest.feature[:, 0] == 0).all()
    assert forest.importances[0] == pytest.approx(1.0) and forest.importances[1:].sum() == 0


def test_bootstrap_forest_matches_sklearn_in_distribution():
    """In-sample and held-out MSE of 10-tree forests over 24 seeds: means within 4 standard errors.

    The in-sample error of a bootstrap forest depends on how many distinct rows each tree sees
    (≈ 63 %), so a wrong bootstrap shifts it far beyond the noise; the held-out error checks the
    thresholds and the candidate sampling at every depth.
    """
    x, y = _data(7, n=160, p=40)
    xt, order = rf.presort(x)
    train, test = np.arange(120), np.arange(120, 160)
    stats = {"ours": [], "sklearn": []}
    for s in range(24):
        for mf in (0.3, 1.0):
            ours = rf.fit_forest(xt, order, y, train, max_depth=6, max_features=mf, n_estimators=10, seed=s)
            sk = RandomForestRegressor(10, max_depth=6, max_features=mf, random_state=s).fit(x[train], y[train])
            stats["ours"].append([np.mean((rf.predict_forest(ours, xt, r) - y[r]) ** 2) for r in (train, test)])
            stats["sklearn"].append([np.mean((sk.predict(x[r]) - y[r]) ** 2) for r in (train, test)])
    a, b = np.array(stats["ours"]), np.array(stats["sklearn"])
    se = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / len(a))
    np.testing.assert_array_less(np.abs(a.mean(axis=0) - b.mean(axis=0)), 4 * se)
    # and without bootstrap every row is used once: in-sample error far below the bootstrap one
    full = rf.fit_forest(xt, order, y, train, max_depth=6, max_features=1.0, n_estimators=10, bootstrap=False)
    assert np.mean((rf.predict_forest(full, xt, train) - y[train]) ** 2) < a[:, 0].mean()


def test_depth_limit_the_trees_never_reach_changes_nothing():
    """The exact-reuse rule of forest_grid holds for this backend too (same seed, unreached limit)."""
    x, y = _data(8, n=90, p=10)
    xt, order = rf.presort(x)
    rows = np.arange(90)
    deep = rf.fit_forest(xt, order, y, rows, max_depth=128, max_features=0.5, n_estimators=6, seed=21)
    reached = int(deep.depth.max())
    assert 6 < reached < 40
    for d in (reached + 1, 64):
        fit = rf.fit_forest(xt, order, y, rows, max_depth=d, max_features=0.5, n_estimators=6, seed=21)
        np.testing.assert_array_equal(rf.predict_forest(fit, xt, rows), rf.predict_forest(deep, xt, rows))
        np.testing.assert_array_equal(fit.importances, deep.importances)
    limited = rf.fit_forest(xt, order, y, rows, max_depth=reached - 1, max_features=0.5, n_estimators=6, seed=21)
    assert not np.array_equal(rf.predict_forest(limited, xt, rows), rf.predict_forest(deep, xt, rows))


def test_pure_and_tiny_nodes_are_leaves():
    x = np.arange(8, dtype=np.float32).reshape(-1, 1)
    xt, order = rf.presort(x)
    const = rf.fit_forest(xt, order, np.full(8, 3.0), np.arange(8), max_depth=10, max_features=1.0, n_estimators=3)
    assert (const.left[:, 0] == -1).all() and const.importances.sum() == 0.0  # pure root: no split, no importance
    one = rf.fit_forest(xt, order, np.arange(8.0), np.array([5]), max_depth=10, max_features=1.0, n_estimators=2)
    assert rf.predict_forest(one, xt, np.arange(8)).tolist() == [5.0] * 8
