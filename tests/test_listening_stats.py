"""Known-answer tests of mixeval.metrics.stats against scipy and hand computations."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mixeval.metrics.stats import (
    bonferroni,
    cohens_dz,
    describe,
    friedman,
    mean_ci,
    paired_ttest,
    pairwise_paired_tests,
    rm_anova,
)

# 6 participants x 3 conditions, small enough to check by hand
TABLE = np.array(
    [
        [0.80, 0.55, 0.20],
        [0.72, 0.60, 0.25],
        [0.90, 0.52, 0.10],
        [0.65, 0.58, 0.30],
        [0.85, 0.40, 0.22],
        [0.78, 0.61, 0.15],
    ]
)


def test_paired_ttest_matches_scipy_and_hand_formula():
    a, b = TABLE[:, 0], TABLE[:, 1]
    res = paired_ttest(a, b)
    ref = sps.ttest_rel(a, b)
    d = a - b
    t_hand = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    assert res.n == 6 and res.df == 5
    assert res.t == pytest.approx(ref.statistic, rel=1e-12)
    assert res.t == pytest.approx(t_hand, rel=1e-12)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.p == pytest.approx(2 * sps.t.sf(abs(t_hand), 5), rel=1e-10)
    assert res.mean_diff == pytest.approx(d.mean())
    half = sps.t.ppf(0.975, 5) * d.std(ddof=1) / math.sqrt(6)
    assert (res.ci_low, res.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert res.d_z == pytest.approx(d.mean() / d.std(ddof=1))


def test_paired_ttest_drops_incomplete_pairs_and_degenerate_cases():
    a = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    b = np.array([0.5, np.nan, 3.0, 3.0, 4.5])
    res = paired_ttest(a, b)
    ref = sps.ttest_rel([1.0, 4.0, 5.0], [0.5, 3.0, 4.5])
    assert res.n == 3 and res.p == pytest.approx(ref.pvalue)
    same = paired_ttest([0.3, 0.4, 0.5], [0.3, 0.4, 0.5])
    assert same.t == 0 and same.p == 1.0 and same.d_z == 0.0
    shifted = paired_ttest([0.4, 0.5, 0.6], [0.3, 0.4, 0.5])
    assert shifted.p == 0.0 and shifted.t == math.inf
    assert math.isnan(paired_ttest([0.1], [0.2]).p)
    with pytest.raises(ValueError):
        paired_ttest([1, 2, 3], [1, 2])


def test_bonferroni_multiplies_and_caps_at_one():
    p = np.array([0.001, 0.01, 0.2, 0.6, np.nan])
    out = bonferroni(p, n_comparisons=4)
    assert out[:4] == pytest.approx([0.004, 0.04, 0.8, 1.0])
    assert math.isnan(out[4])
    assert bonferroni([0.3, 0.5]) == pytest.approx([0.6, 1.0])  # m defaults to the count
    with pytest.raises(ValueError):
        bonferroni([1.5])


def test_pairwise_tests_every_pair_with_bonferroni_family():
    wide = pd.DataFrame(TABLE, columns=["gt", "mee", "anchor"])
    wide.loc[2, "mee"] = np.nan  # one incomplete pair for gt-mee and mee-anchor
    out = pairwise_paired_tests(wide, alpha=0.05)
    assert list(zip(out["a"], out["b"])) == [("gt", "mee"), ("gt", "anchor"), ("mee", "anchor")]
    for _, row in out.iterrows():
        x, y = wide[row["a"]].to_numpy(), wide[row["b"]].to_numpy()
        keep = ~np.isnan(x) & ~np.isnan(y)
        ref = sps.ttest_rel(x[keep], y[keep])
        assert row["p"] == pytest.approx(ref.pvalue)
        assert row["p_bonferroni"] == pytest.approx(min(1.0, 3 * ref.pvalue))
        assert row["n"] == keep.sum()
        assert row["n_dropped"] == (1 if "mee" in (row["a"], row["b"]) else 0)
        assert row["significant"] == (row["p_bonferroni"] < 0.05)


def test_cohens_dz_and_mean_ci_and_describe():
    a, b = TABLE[:, 0], TABLE[:, 2]
    d = a - b
    assert cohens_dz(a, b) == pytest.approx(d.mean() / d.std(ddof=1))
    m, lo, hi = mean_ci(a, confidence=0.9)
    ref = sps.t.interval(0.9, len(a) - 1, loc=a.mean(), scale=sps.sem(a))
    assert m == pytest.approx(a.mean()) and (lo, hi) == pytest.approx(ref)
    desc = describe(np.append(a, np.nan))
    assert desc["n"] == 6 and desc["median"] == pytest.approx(np.median(a))
    assert desc["std"] == pytest.approx(a.std(ddof=1))


def test_rm_anova_two_conditions_equals_paired_t():
    res = rm_anova(TABLE[:, :2])
    t = sps.ttest_rel(TABLE[:, 0], TABLE[:, 1])
    assert res.f == pytest.approx(t.statistic**2)
    assert res.p == pytest.approx(t.pvalue)
    assert (res.df1, res.df2) == (1, 5)
    assert res.eps_gg == pytest.approx(1.0)


def test_rm_anova_matches_regression_with_subject_and_condition_dummies():
    """F = reduction in residual SS from adding condition dummies to a subject-only linear model."""
    n, k = TABLE.shape
    y = TABLE.reshape(-1)
    subj = np.kron(np.eye(n), np.ones((k, 1)))
    cond = np.kron(np.ones((n, 1)), np.eye(k))[:, 1:]

    def rss(x):
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        return float(np.sum((y - x @ beta) ** 2))

    rss_full, rss_subj = rss(np.hstack([subj, cond])), rss(subj)
    df1, df2 = k - 1, n * k - n - (k - 1)
    f_ref = ((rss_subj - rss_full) / df1) / (rss_full / df2)
    res = rm_anova(TABLE)
    assert (res.df1, res.df2) == (df1, df2)
    assert res.f == pytest.approx(f_ref, rel=1e-10)
    assert res.p == pytest.approx(sps.f.sf(f_ref, df1, df2), rel=1e-10)
    assert 1 / (k - 1) <= res.eps_gg <= 1
    assert res.eta_p2 == pytest.approx((rss_subj - rss_full) / (rss_subj - rss_full + rss_full))


def test_greenhouse_geisser_lower_bound_for_rank_one_contrasts():
    """Differences between conditions proportional across subjects: contrast covariance of rank 1, eps = 1/(k-1)."""
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.5, 2.0, size=10)
    offset = rng.uniform(0.0, 1.0, size=10)
    c = np.array([0.0, 0.3, 0.1, 0.7])
    y = scale[:, None] * c[None, :] + offset[:, None]
    y += 1e-9 * rng.standard_normal(y.shape)  # keep the error term non-zero
    res = rm_anova(y)
    assert res.eps_gg == pytest.approx(1 / 3, rel=1e-3)


def test_friedman_matches_scipy_and_needs_three_conditions():
    chi2, p = friedman(TABLE)
    ref = sps.friedmanchisquare(*TABLE.T)
    assert chi2 == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert all(math.isnan(v) for v in friedman(TABLE[:, :2]))
