"""DCI-RF internals (mixeval.metrics.disentangle.dci, mixeval.metrics.forest_grid).

Known answers: hand-computed importance matrices, the reference's forest procedure re-run fold by
fold with sklearn, and the values measured with the reference code in
/work/shared/reference/metrics_notes.md (§6a, §6b). DCIMIG, MIG, SAP and the information primitives
are tested in ``test_metrics_disentangle.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import KFold
from sklearn.preprocessing import minmax_scale

import mixeval.metrics.disentangle as disentangle
import mixeval.metrics.forest_grid as forest_grid
from mixeval.errors import MixevalError
from mixeval.metrics.disentangle import dci, dci_from_importance


# ------------------------------------------------------------------ DCI internals


def test_dci_from_importance_hand_cases_and_break_quirk():
    assert dci_from_importance(np.eye(3))[:2] == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((3, 4)))[:2] == pytest.approx((0.0, 0.0))
    r = np.array([[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5]])
    # codes 0, 1 pure (1 - H = 1), code 2 unused, code 3 split evenly (1 - H = 0); weights 1:1:0:1
    d, c, c_f = dci_from_importance(r)
    assert d == pytest.approx(2.0 / 3.0)
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(4)
    np.testing.assert_allclose(c_f, [1 - h, 1 - h])
    assert c == pytest.approx(1 - h)
    # reference 'break': the loop stops at unused code 2, so code 3 never counts
    assert dci_from_importance(r, reference_quirks=True)[0] == pytest.approx(1.0)
    assert dci_from_importance(r[:, [2, 0, 1, 3]], reference_quirks=True)[0] == 0.0
    # tiny negative importances (sklearn) are clipped instead of crashing; zero rows -> completeness 0
    neg = np.array([[0.7, 0.3, -1e-17], [0.0, 0.0, 0.0]])
    d, c, c_f = dci_from_importance(neg)
    assert np.isfinite(d) and c_f[1] == 0.0
    with pytest.warns(RuntimeWarning):
        assert math.isnan(dci_from_importance(np.array([[0.2, 0.8]]))[0])
    with pytest.raises(MixevalError):
        dci_from_importance(np.array([[0.2, 0.8]]), reference_quirks=True)


def test_dci_reproduces_reference_procedure():
    """Re-run the reference's per-factor procedure (10-fold CV grid, refit, in-sample MSE) with the documented seeds.

    On the sklearn backend, so that every forest can be rebuilt from its seed; the numba backend's
    forests are checked against sklearn's in tests/test_random_forest.py and the whole procedure
    against the reference within seed noise below.
    """
    rng = np.random.default_rng(9)
    f = rng.uniform(size=(120, 2))
    codes = np.hstack([f @ rng.normal(size=(2, 3)), rng.normal(size=(120, 1))])
    grid = dict(max_depths=(4, 64), max_features=(0.5, 1.0))
    res = dci(f, codes, seed=3, n_splits=10, n_jobs=1, n_estimators=5, backend="sklearn", **grid)
    fs, cs = minmax_scale(f), minmax_scale(codes)

    def state(*key):  # documented: SeedSequence(seed, spawn_key=(0, factor, max_features, fold, class) / (1, factor, grid point))
        return int(np.random.SeedSequence(3, spawn_key=key).generate_state(1)[0])

    # default: one class per limit; shared: limits >= 2*ceil(log2 108) = 14 form class 0
    assert disentangle.depth_classes((4, 64), 108) == (1, 2)
    assert disentangle.depth_classes((4, 64), 108, share_deep=True) == (1, 0)
    info_cv = []
    for j in range(2):
        best, best_mse = None, 10e10
        points = [(md, mf) for md in grid["max_depths"] for mf in grid["max_features"]]
        for g, (md, mf) in enumerate(points):
            fold_mse = []
            for fold, (tr, te) in enumerate(KFold(n_splits=10).split(cs)):
                key = (0, j, grid["max_features"].index(mf), fold, 1 if md == 4 else 2)
                model = RandomForestRegressor(n_estimators=5, max_depth=md, max_features=mf, random_state=state(*key))
                model.fit(cs[tr], fs[tr, j])
                fold_mse.append(mean_squared_error(fs[te, j], model.predict(cs[te])))
            if np.mean(fold_mse) < best_mse:
                best, best_g, best_mse = (md, mf), g, np.mean(fold_mse)
        info_cv.append(max(1 - 12 * best_mse, 0))
        model = RandomForestRegressor(n_estimators=5, max_depth=best[0], max_features=best[1], random_state=state(1, j, best_g))
        model.fit(cs, fs[:, j])
        assert res.best_params[j] == best
        info = max(1 - 12 * mean_squared_error(model.predict(cs), fs[:, j]), 0)
        assert res.factor_informativeness[j] == pytest.approx(info, abs=1e-12)
        np.testing.assert_allclose(res.importance[j], model.feature_importances_, atol=1e-12)
    assert res.informativeness_cv == pytest.approx(np.mean(info_cv), abs=1e-12)
    # D and C by the reference loops (math.log with base K / L)
    e = res.importance
    rho = e.sum(axis=0)
    d_code = [1 + sum(p * math.log(p, 2) for p in e[:, c] / rho[c] if p) for c in range(4)]
    assert res.disentanglement == pytest.approx(float(np.dot(d_code, rho / rho.sum())), abs=1e-12)
    c_fac = [1 + sum(p * math.log(p, 4) for p in e[j] / e[j].sum() if p) for j in range(2)]
    assert res.completeness == pytest.approx(float(np.mean(c_fac)), abs=1e-12)


def test_dci_deterministic_and_parallel_invariant():
    rng = np.random.default_rng(10)
    f = rng.uniform(size=(150, 3))
    codes = f @ rng.normal(size=(3, 400))
    kw = dict(max_depths=(8, 32), max_features=(0.5, 1.0), n_splits=3, seed=11)
    serial = dci(f, codes, n_jobs=1, **kw)
    parallel = dci(f, codes, n_jobs=2, **kw)  # large enough (150 x 400) to run in 2 threads
    np.testing.assert_array_equal(serial.importance, parallel.importance)
    assert tuple(serial) == tuple(parallel) and serial.informativeness_cv == parallel.informativeness_cv
    d, c, i = serial
    assert all(0.0 <= v <= 1.0 for v in (d, c, i, serial.informativeness_cv))
    calls = []
    dci(f, codes, n_jobs=1, progress=lambda *call: calls.append(call), **kw)
    total = 3 * (2 * 3 + 1)
    assert calls == [(done, total, "forest fits") for done in range(1, total + 1)]


def test_forest_reuse_equals_sklearn_fit_with_that_depth_and_seed():
    """A forest whose trees never reach depth d is sklearn's forest with max_depth=d and the same seed."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = x[:, 0] + 0.3 * rng.normal(size=90)
    grid_x = rng.normal(size=(40, 6)).astype(np.float32)
    for mf in (0.4, 1.0):
        deep = RandomForestRegressor(n_estimators=6, max_depth=128, max_features=mf, random_state=21).fit(x, y)
        reached = forest_grid.reached_depth(deep)
        assert reached == max(t.tree_.max_depth for t in deep.estimators_) and 8 < reached < 40
        for d in (reached + 1, reached + 7, 64):  # (d == reached is exact too unless a split failed there)
            fit = RandomForestRegressor(n_estimators=6, max_depth=d, max_features=mf, random_state=21).fit(x, y)
            np.testing.assert_array_equal(fit.predict(grid_x), deep.predict(grid_x))
            np.testing.assert_array_equal(fit.feature_importances_, deep.feature_importances_)
        limited = RandomForestRegressor(n_estimators=6, max_depth=reached - 1, max_features=mf, random_state=21)
        limited.fit(x, y)
        assert not np.array_equal(limited.predict(grid_x), deep.predict(grid_x))  # a reached limit does change it
    # the grid search itself: each depth's fold MSE equals sklearn's fit with that depth and its class seed
    train, test = np.arange(70), np.arange(70, 90)
    depths, classes, seeds = (4, 16, 32, 128), (1, 0, 0, 0), (101, 202)
    got = forest_grid.fold_mse_by_depth(x, y, train, test, depths, classes, 0.5, 5, seeds)
    for i, d in enumerate(depths):
        model = RandomForestRegressor(n_estimators=5, max_depth=d, max_features=0.5, random_state=seeds[classes[i]])
        model.fit(x[train], y[train])
        assert got[i] == pytest.approx(mean_squared_error(y[test], model.predict(x[test])), abs=1e-15)


@pytest.mark.parametrize("backend", ["numba", "sklearn"])
def test_dci_seed_classes_distinct_and_reused_only_when_exact(monkeypatch, backend):
    """Default: a fresh seed per (factor, grid point, fold). Shared mode: deep limits share one fit (issue 10)."""
    used = []
    real = forest_grid.fit_on_rows

    def spy(codes, y, rows, md, mf, n, s):
        assert codes.backend == backend
        used.append((md, mf, s))
        return real(codes, y, rows, md, mf, n, s)

    monkeypatch.setattr(forest_grid, "fit_on_rows", spy)
    rng = np.random.default_rng(12)
    f, codes = rng.uniform(size=(40, 2)), rng.normal(size=(40, 3))  # noise codes
    kw = dict(seed=5, max_depths=(8, 32, 64), max_features=(0.5, 1.0), n_splits=3, n_estimators=2, backend=backend)
    exact = dci(f, codes, n_jobs=1, **kw)
    cv = used[:-2]  # the last two fits are the refits
    assert len(cv) == 2 * 3 * 2 * 3 and len({s for _, _, s in cv}) == len(cv)  # every grid point x fold its own seed
    used.clear()
    shared = dci(f, codes, n_jobs=1, share_deep_fits=True, **kw)
    cv = used[:-2]
    assert {md for md, _, _ in cv} == {8, 64}  # 26 training rows never reach depth 32: depth 64's fit serves it
    seeds_8 = [s for md, _, s in cv if md == 8]
    seeds_64 = [s for md, _, s in cv if md == 64]
    assert len(seeds_8) == len(set(seeds_8)) == 2 * 2 * 3 and len(seeds_64) == len(set(seeds_64)) == 2 * 2 * 3
    assert set(seeds_8).isdisjoint(seeds_64)
    assert all(bp[0] != 64 for bp in shared.best_params)  # 32 and 64 tie: the earlier grid point is reported
    first = list(used)
    used.clear()
    again = dci(f, codes, n_jobs=2, share_deep_fits=True, **kw)
    assert sorted(used) == sorted(first) and tuple(again) == tuple(shared)  # reproducible, independent of n_jobs


def test_dci_matches_reference_procedure_within_seed_noise_on_noise_codes():
    """Issue 10's bias check, scaled down: noise codes, a shallow limit vs two limits the trees never reach.

    The reference procedure (benchmarks/reference_dci.py: cross_val_score per grid point, unseeded
    forests) draws every grid point independently; so must dci. Expl must agree within seed noise
    and the shallow limit must not be picked systematically (one shared seed picked it 9 times in 10).
    """
    from benchmarks.reference_dci import reference_dci

    rng = np.random.default_rng(4)
    f, codes = rng.uniform(size=(150, 2)), rng.normal(size=(150, 8))
    grid = dict(max_depths=(6, 32, 64), max_features=(1.0,), n_estimators=3, n_splits=5)
    ref = [reference_dci(f, codes, seed=s, **grid) for s in range(8)]
    ours = [dci(f, codes, seed=s, n_jobs=1, **grid) for s in range(8)]
    i_ref, i_ours = np.array([r["I"] for r in ref]), np.array([r.informativeness for r in ours])
    noise = math.sqrt((i_ref.var(ddof=1) + i_ours.var(ddof=1)) / 8)
    assert abs(i_ours.mean() - i_ref.mean()) < 3 * noise
    shallow_ref = sum(b[0] == 6 for r in ref for b in r["best"])
    shallow_ours = sum(b[0] == 6 for r in ours for b in r.best_params)
    assert 0 < shallow_ours < 16 and 0 < shallow_ref < 16
    assert abs(shallow_ours - shallow_ref) <= 8  # binomial(16, ~0.5) counts: sd ~2 each
    d_ref, d_ours = np.array([r["D"] for r in ref]), np.array([r.disentanglement for r in ours])
    assert abs(d_ours.mean() - d_ref.mean()) < 3 * math.sqrt((d_ref.var(ddof=1) + d_ours.var(ddof=1)) / 8) + 1e-9


def test_dci_matches_reference_procedure_on_informative_codes():
    """Informative codes: both procedures find the factor (Expl high, within seed noise of each other)."""
    from benchmarks.reference_dci import reference_dci

    rng = np.random.default_rng(6)
    f = rng.uniform(size=(120, 2))
    codes = np.hstack([f + 0.05 * rng.normal(size=(120, 2)), rng.normal(size=(120, 4))])
    grid = dict(max_depths=(4, 32), max_features=(0.5, 1.0), n_estimators=3, n_splits=5)
    ref = np.array([[*map(reference_dci(f, codes, seed=s, **grid).get, "IDC")] for s in range(4)])
    ours = np.array([[r.informativeness, r.disentanglement, r.completeness]
                     for r in (dci(f, codes, seed=s, n_jobs=1, **grid) for s in range(4))])
    assert ref[:, 0].mean() > 0.8 and ours[:, 0].mean() > 0.8
    noise = np.sqrt((ref.var(axis=0, ddof=1) + ours.var(axis=0, ddof=1)) / 4)
    np.testing.assert_array_less(np.abs(ours.mean(axis=0) - ref.mean(axis=0)), 3 * noise + 0.02)
