"""Tests for mixeval.metrics.disentangle / information: DCIMIG, MIG, SAP and the scores on known codes.

DCI-RF's internals (importance → D, C, I; the forest grid against the reference procedure) are
tested in ``test_metrics_dci.py``.

Known answers come from hand computation, sklearn (mutual_info_score, LinearRegression, the
reference's forest procedure re-run fold by fold), textbook identities and the values
measured with the reference code in /work/shared/reference/metrics_notes.md (§6a, §6b).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mutual_info_score, r2_score
from sklearn.preprocessing import minmax_scale

import mixeval.metrics.information as information
from mixeval.errors import MixevalError
from mixeval.metrics.disentangle import dci, dcimig, mig, sap
from mixeval.metrics.information import discretize, entropy, mutual_information_matrix

LN2 = math.log(2.0)
# Normalised 4x4 Hadamard matrix: every code is an equal-weight mix of all four factors.
HADAMARD4 = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=float) / 2.0
SMALL_GRID = dict(max_depths=(8, 16), max_features=(0.5, 1.0), n_splits=3, n_jobs=1)
TINY_GRID = dict(max_depths=(8,), max_features=(1.0,), n_splits=2, n_jobs=1)


# ------------------------------------------------------------------ independent naive references


def _bins(x: np.ndarray, nb_bins: int = 10) -> np.ndarray:
    """Reference rule written out: min-max scale, count the edges linspace(0,1,nb+1)[:-1] <= value."""
    edges = np.linspace(0, 1, nb_bins + 1)[:-1]
    scaled = minmax_scale(x)
    return (scaled[:, :, None] >= edges).sum(axis=2)


def _mi_bits(a: np.ndarray, b: np.ndarray) -> float:
    return mutual_info_score(a, b) / LN2


def _naive_dcimig(factors, codes, continuous_factors=True):
    f = _bins(factors) if continuous_factors else factors
    c = _bins(codes)
    k, l = f.shape[1], c.shape[1]
    m = np.array([[_mi_bits(f[:, i], c[:, j]) for j in range(l)] for i in range(k)])
    best_gap = np.zeros(k)
    for j in range(l):
        col = sorted(m[:, j])
        top = int(np.argmax(m[:, j]))
        best_gap[top] = max(best_gap[top], col[-1] - col[-2])
    return best_gap.sum() / sum(_mi_bits(f[:, i], f[:, i]) for i in range(k))


def _naive_mig(factors, codes, normalization):
    f, c = _bins(factors), _bins(codes)
    gaps = []
    for i in range(f.shape[1]):
        if normalization == "code":
            row = sorted(_mi_bits(f[:, i], c[:, j]) / _mi_bits(c[:, j], c[:, j]) for j in range(c.shape[1]))
            gaps.append(row[-1] - row[-2])
        else:
            row = sorted(_mi_bits(f[:, i], c[:, j]) for j in range(c.shape[1]))
            gaps.append((row[-1] - row[-2]) / _mi_bits(f[:, i], f[:, i]))
    return float(np.mean(gaps))


# ------------------------------------------------------------------ information primitives


def test_entropy_and_mutual_information_hand_computed():
    x = np.array([[0], [0], [0], [1]])
    y = np.array([[0], [0], [1], [1]])
    # p(x,y): (0,0)=1/2, (0,1)=1/4, (1,1)=1/4; p(x)=(3/4,1/4); p(y)=(1/2,1/2)
    # I = 1/2 log2(4/3) + 1/4 log2(2/3) + 1/4 log2(2) = 3/2 - 3/4 log2(3)
    assert mutual_information_matrix(x, y)[0, 0] == pytest.approx(1.5 - 0.75 * math.log2(3), abs=1e-12)
    assert entropy(x)[0] == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)), abs=1e-12)
    assert entropy(y)[0] == pytest.approx(1.0, abs=1e-12)
    assert mutual_information_matrix(y, y)[0, 0] == pytest.approx(1.0, abs=1e-12)  # I(Y;Y) = H(Y)
    indep = mutual_information_matrix(np.array([[0], [0], [1], [1]]), np.array([[0], [1], [0], [1]]))
    assert indep[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert entropy(y, base=math.e)[0] == pytest.approx(math.log(2), abs=1e-12)


@pytest.mark.filterwarnings("ignore:Clustering metrics expects discrete values")
@pytest.mark.parametrize("shape_x, shape_y", [((300, 4), (300, 37)), ((300, 37), (300, 4))])
def test_mi_matrix_matches_sklearn(shape_x, shape_y, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 7, size=shape_x) * 3 - 5  # negative, non-contiguous labels -> relabelled
    y = rng.integers(0, 4, size=shape_y) + (rng.integers(0, 2, size=shape_y) * x[:, :1] % 3)
    y = y.astype(float) / 7.0  # float labels
    expected = np.array([[mutual_info_score(x[:, i], y[:, j]) for j in range(shape_y[1])] for i in range(shape_x[1])])
    np.testing.assert_allclose(mutual_information_matrix(x, y), expected / LN2, atol=1e-12)
    np.testing.assert_allclose(mutual_information_matrix(x, y, base=math.e), expected, atol=1e-12)
    monkeypatch.setattr(information, "_MAX_CELLS", 50)  # force the blocked path
    np.testing.assert_allclose(mutual_information_matrix(x, y), expected / LN2, atol=1e-12)


def test_discretize_equal_width_bins_hand_example():
    x = np.array([0.0, 0.05, 0.15, 0.55, 0.95, 1.0])[:, None] * 10.0 + 3.0  # range [3, 13]
    np.testing.assert_array_equal(discretize(x)[:, 0], [1, 1, 2, 6, 10, 10])
    np.testing.assert_array_equal(discretize(np.full((4, 1), 2.5))[:, 0], [1, 1, 1, 1])  # constant -> one bin
    np.testing.assert_array_equal(discretize(x, nb_bins=2)[:, 0], [1, 1, 1, 2, 2, 2])


# ------------------------------------------------------------------ DCIMIG / MIG / SAP definitions


def test_dcimig_and_mig_match_naive_reference_rule():
    rng = np.random.default_rng(3)
    f = rng.uniform(size=(200, 4))
    c = np.hstack([f @ rng.normal(size=(4, 6)), rng.normal(size=(200, 5)), f[:, :1] ** 3])
    assert dcimig(f, c) == pytest.approx(_naive_dcimig(f, c), abs=1e-12)
    for norm in ("code", "factor"):
        assert mig(f, c, normalization=norm) == pytest.approx(_naive_mig(f, c, norm), abs=1e-12)
    # float32 codes are accepted and binned the same way
    c32 = c.astype(np.float32)
    assert dcimig(f, c32) == pytest.approx(_naive_dcimig(f, c32), abs=1e-12)


def test_sap_matches_linear_regression_r2_gaps():
    rng = np.random.default_rng(4)
    f = rng.uniform(size=(150, 3))
    c = np.hstack([f @ rng.normal(size=(3, 4)), rng.normal(size=(150, 2)), np.ones((150, 1))])
    s = np.zeros((3, c.shape[1]))
    for i in range(3):
        for j in range(c.shape[1]):
            pred = LinearRegression().fit(c[:, j : j + 1], f[:, i]).predict(c[:, j : j + 1])
            s[i, j] = max(0.0, r2_score(f[:, i], pred))
    expected = np.mean([np.sort(row)[-1] - np.sort(row)[-2] for row in s])
    assert sap(f, c) == pytest.approx(expected, abs=1e-10)


def test_config_and_content_ids_closed_form():
    """Notes §6b: factors [config id (10), content id (25)], codes = the ids -> DCIMIG 0.830, MIG 1.000."""
    config, content = np.meshgrid(np.arange(10), np.arange(25), indexing="ij")
    ids = np.stack([config.ravel(), content.ravel()], axis=1)
    # The 25 content ids fall into the 10 equal-width bins with counts 3,2,3,2,2,3,2,3,2,3 (by hand).
    p = np.array([3, 2, 3, 2, 2, 3, 2, 3, 2, 3]) / 25.0
    h_binned = -(p * np.log2(p)).sum()
    expected = (math.log2(10) + h_binned) / (math.log2(10) + math.log2(25))
    score = dcimig(ids, ids.astype(float), continuous_factors=False)
    assert score == pytest.approx(expected, abs=1e-12)
    assert score == pytest.approx(0.830, abs=5e-4)
    assert mig(ids, ids.astype(float), continuous_factors=False) == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------ behaviour on known representations


def test_codes_equal_factors_score_near_one():
    f = np.random.default_rng(5).uniform(size=(2000, 8))
    # notes §6a (N=2000, 8 U(0,1) factors, reference code): DCIMIG 0.990, MIG 0.990, D = C = I = 1.000
    assert dcimig(f, f) == pytest.approx(0.990, abs=0.005)
    assert mig(f, f) == pytest.approx(0.990, abs=0.005)
    assert sap(f, f) > 0.98
    res = dci(f[:400, :3], f[:400, :3], **SMALL_GRID)
    assert min(res.disentanglement, res.completeness, res.informativeness) > 0.99


def test_independent_random_codes_score_near_zero():
    rng = np.random.default_rng(6)
    f, c = rng.uniform(size=(2000, 5)), rng.uniform(size=(2000, 5))
    # notes §6a: random codes -> DCIMIG 0.001, MIG 0.001, D 0.004, C 0.005, Expl 0.171 (training-set artefact)
    assert dcimig(f, c) < 0.005
    assert mig(f, c) < 0.005
    assert sap(f, c) < 0.01
    res = dci(f, c, max_depths=(8,), max_features=(0.4,), n_splits=2, n_jobs=1)
    assert res.disentanglement < 0.05 and res.completeness < 0.05
    assert 0.05 < res.informativeness < 0.4  # in-sample Expl of deep forests on noise, as the reference
    assert res.informativeness_cv < 0.05  # held-out counterpart is ~0


def test_rotation_low_disentanglement_high_explicitness():
    f = np.random.default_rng(7).uniform(size=(600, 4))
    codes = f @ HADAMARD4
    assert dcimig(f, codes) < 0.05 and mig(f, codes) < 0.05 and sap(f, codes) < 0.05
    rot = dci(f, codes, max_depths=(8,), max_features=(0.5, 1.0), n_splits=3, n_jobs=1)
    assert rot.disentanglement < 0.2 and rot.completeness < 0.2
    assert rot.informativeness > 0.9


def test_duplicated_codes():
    f = np.random.default_rng(8).uniform(size=(400, 3))
    dup = np.hstack([f, f])
    assert dcimig(f, dup) == pytest.approx(dcimig(f, f), abs=1e-12)  # notes §6a: 0.990 both
    assert mig(f, dup) == pytest.approx(0.0, abs=1e-12)  # notes §6a: 0.000
    res = dci(f, dup, max_depths=(8,), max_features=(1.0,), n_splits=3, n_jobs=1)
    assert res.disentanglement > 0.99
    # importance shared by two copies -> C = 1 - log 2 / log(#codes) (disentanglement_lib's unit test rule)
    assert res.completeness == pytest.approx(1 - math.log(2) / math.log(6), abs=0.05)


def test_paper_protocol_shared_configurations_cap_dcimig():
    """25 contents x 10 FX configurations: every factor is a function of the configuration id."""
    rep_scores, iid_scores = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        configs = rng.uniform(size=(10, 5))
        rep = np.repeat(configs, 25, axis=0)  # (250, 5), 10 distinct rows
        score = dcimig(rep, rep)
        # repeating every row 25 times leaves all plug-in MIs/entropies unchanged
        assert score == pytest.approx(dcimig(configs, configs), abs=1e-12)
        assert score == pytest.approx(_naive_dcimig(rep, rep), abs=1e-12)
        rep_scores.append(score)
        iid = rng.uniform(size=(250, 5))
        iid_scores.append(dcimig(iid, iid))
    # notes §6b: rep10 codes = factors -> 0.152; iid250 -> 0.909 / 0.898
    assert max(rep_scores) < 0.4 and 0.05 < np.mean(rep_scores) < 0.3
    assert min(iid_scores) > 0.85


# ------------------------------------------------------------------ degenerate input


@pytest.mark.parametrize("metric", [dcimig, mig, sap, lambda f, c: dci(f, c, **TINY_GRID)])
def test_invalid_inputs_raise_mixeval_error(metric):
    good = np.random.default_rng(12).uniform(size=(20, 2))
    with pytest.raises(MixevalError, match="2-D"):
        metric(good[:, 0], good)
    with pytest.raises(MixevalError, match="same number of rows"):
        metric(good, good[:10])
    with pytest.raises(MixevalError, match="at least 2 samples"):
        metric(good[:1], good[:1])
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(MixevalError, match="NaN"):
        metric(good, bad)
    with pytest.raises(MixevalError, match="constant"):
        metric(np.ones((20, 2)), good)


def test_constant_factor_dropped_with_warning():
    rng = np.random.default_rng(13)
    f = rng.uniform(size=(300, 3))
    codes = f + 0.1 * rng.normal(size=f.shape)
    with_const = np.hstack([f[:, :1], np.full((300, 1), 0.5), f[:, 1:]])
    for metric in (dcimig, mig, sap):
        with pytest.warns(UserWarning, match=r"dropping constant column\(s\) \[1\]"):
            assert metric(with_const, codes) == pytest.approx(metric(f, codes), abs=1e-12)
    with pytest.warns(UserWarning, match="constant"):
        res = dci(with_const, codes, **TINY_GRID)
    assert res.factor_indices == (0, 2, 3)
    assert tuple(res) == tuple(dci(f, codes, **TINY_GRID))
    # reference behaviour (numpy 1.x): the constant factor is kept with Expl = 1 and Comp = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quirky = dci(with_const, codes, reference_quirks=True, **TINY_GRID)
    assert quirky.factor_informativeness[1] == 1.0 and quirky.factor_completeness[1] == 0.0


def test_single_factor_and_single_code():
    rng = np.random.default_rng(14)
    f = rng.uniform(size=(300, 1))
    codes = np.hstack([f, rng.uniform(size=(300, 3))])
    # second-best MI taken as 0: DCIMIG = max_c I(c; f) / H(f) (the reference raises IndexError)
    fb, cb = _bins(f), _bins(codes)
    expected = max(_mi_bits(fb[:, 0], cb[:, j]) for j in range(4)) / _mi_bits(fb[:, 0], fb[:, 0])
    assert dcimig(f, codes) == pytest.approx(expected, abs=1e-12)
    assert dcimig(f, codes) == pytest.approx(1.0, abs=1e-12)
    assert mig(codes, f) > 0.0 and sap(codes, f) > 0.0
    with pytest.raises(MixevalError, match="2 factors"):
        dci(f, codes, reference_quirks=True, **TINY_GRID)
    with pytest.warns(RuntimeWarning, match="single factor"):
        res = dci(f, codes, **TINY_GRID)
    assert math.isnan(res.disentanglement) and res.completeness > 0.9 and res.informativeness > 0.9
