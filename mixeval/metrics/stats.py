"""Statistics for listening tests: paired t-tests, Bonferroni, Cohen's d_z, CIs, RM-ANOVA, Friedman.

Pure functions on arrays and DataFrames; no file I/O. Ratings come as a *wide* table with one
row per unit (a participant, or a participant × question pair) and one column per condition.

References:
    J. Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., 1988 (d_z).
    S. W. Greenhouse and S. Geisser, "On methods in the analysis of profile data",
    Psychometrika 24, 1959 (sphericity correction).
    ITU-R BS.1534-3 (MUSHRA), §5.4 (post-screening of assessors).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PairedTest",
    "RMAnova",
    "bonferroni",
    "cohens_dz",
    "describe",
    "friedman",
    "mean_ci",
    "paired_ttest",
    "pairwise_paired_tests",
    "rm_anova",
]


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired t-test of ``a - b``.

    Attributes:
        n: number of complete pairs used.
        mean_diff: mean of ``a - b``.
        ci_low, ci_high: confidence interval of the mean difference (t distribution).
        t, df, p: t statistic, degrees of freedom (n - 1) and two-sided p-value.
        d_z: Cohen's d_z = mean(a - b) / sd(a - b) (ddof = 1).
    """

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    t: float
    df: int
    p: float
    d_z: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RMAnova:
    """One-way repeated-measures ANOVA.

    Attributes:
        n: subjects (complete rows); k: conditions.
        f, df1, df2, p: F statistic, its degrees of freedom (k - 1, (k - 1)(n - 1)) and p-value.
        eps_gg: Greenhouse–Geisser epsilon in [1 / (k - 1), 1].
        p_gg: p-value with both degrees of freedom multiplied by ``eps_gg``.
        eta_p2: partial eta squared, SS_cond / (SS_cond + SS_error).
    """

    n: int
    k: int
    f: float
    df1: int
    df2: int
    p: float
    eps_gg: float
    p_gg: float
    eta_p2: float

    def to_dict(self) -> dict:
        return asdict(self)


def _as_1d(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    return arr


def mean_ci(x, *, confidence: float = 0.95) -> tuple[float, float, float]:
    r"""Mean and two-sided t confidence interval of the mean.

    .. math:: \bar x \pm t_{1-\alpha/2,\,n-1}\, s / \sqrt{n}

    NaNs are ignored. With fewer than 2 values the interval is ``(nan, nan)``.

    Returns:
        ``(mean, low, high)``.
    """
    x = _as_1d(x, "x")
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if x.size < 2:
        return m, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return m, m - float(half), m + float(half)


def cohens_dz(a, b) -> float:
    r"""Cohen's :math:`d_z` for paired samples: :math:`\bar d / s_d` with :math:`d = a - b`, ddof = 1.

    Returns ``nan`` for fewer than 2 pairs, ``±inf`` when all differences are equal and non-zero,
    and 0 when all are zero.
    """
    d = _as_1d(a, "a") - _as_1d(b, "b")
    if d.size < 2:
        return float("nan")
    m = d.mean()
    if _constant(d):
        return 0.0 if m == 0 else float(np.copysign(np.inf, m))
    return float(m / d.std(ddof=1))


def _constant(d: np.ndarray) -> bool:
    """All differences equal up to float rounding (e.g. 0.6 - 0.5 vs 0.3 - 0.2)."""
    return bool(np.ptp(d) <= 1e-9 * np.max(np.abs(d))) if d.size else True


def paired_ttest(a, b, *, confidence: float = 0.95) -> PairedTest:
    r"""Two-sided paired t-test of ``a`` against ``b`` on the pairs where both are finite.

    .. math:: t = \frac{\bar d}{s_d / \sqrt n}, \quad d = a - b, \quad \nu = n - 1

    The statistic and p-value are those of :func:`scipy.stats.ttest_rel`. Undefined cases
    (fewer than 2 pairs) give NaN; identical samples give t = 0, p = 1.

    Raises:
        ValueError: ``a`` and ``b`` differ in length or are not 1-D.
    """
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    d = a - b
    if n < 2:
        m = float(d.mean()) if n else float("nan")
        return PairedTest(n, m, float("nan"), float("nan"), float("nan"), max(n - 1, 0), float("nan"), float("nan"))
    mean, low, high = mean_ci(d, confidence=confidence)
    if _constant(d):
        mean = float(np.round(mean, 12))
    if _constant(d):
        # scipy returns nan (0/0) or a huge, rounding-driven t here; give the limits explicitly
        t = 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
        p = 1.0 if mean == 0 else 0.0
    else:
        res = stats.ttest_rel(a, b)
        t, p = float(res.statistic), float(res.pvalue)
    return PairedTest(n, mean, low, high, t, n - 1, p, cohens_dz(a, b))


def bonferroni(pvalues, n_comparisons: int | None = None) -> np.ndarray:
    r"""Bonferroni-adjusted p-values: :math:`\min(1, m\,p)`.

    Args:
        pvalues: raw p-values; NaNs stay NaN.
        n_comparisons: family size ``m``; defaults to the number of p-values given.

    Raises:
        ValueError: a p-value outside [0, 1] or ``m`` smaller than 1.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size if n_comparisons is None else int(n_comparisons)
    if m < 1:
        raise ValueError(f"n_comparisons must be >= 1, got {m}")
    finite = p[np.isfinite(p)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    return np.minimum(1.0, p * m)


def rm_anova(table) -> RMAnova:
    r"""One-way repeated-measures ANOVA on an ``(n_subjects, k_conditions)`` table.

    Rows with any NaN are dropped. With :math:`\bar y_{i\cdot}` the subject means,
    :math:`\bar y_{\cdot j}` the condition means and :math:`\bar y` the grand mean:

    .. math::
        SS_c = n \sum_j (\bar y_{\cdot j} - \bar y)^2,\quad
        SS_s = k \sum_i (\bar y_{i\cdot} - \bar y)^2,\quad
        SS_e = SS_{tot} - SS_c - SS_s,\quad
        F = \frac{SS_c / (k-1)}{SS_e / ((k-1)(n-1))}

    The Greenhouse–Geisser epsilon is :math:`\operatorname{tr}(S)^2 / ((k-1)\operatorname{tr}(S^2))`
    for the double-centred covariance matrix :math:`S` of the conditions. For k = 2 the test
    equals the paired t-test (:math:`F = t^2`).

    Returns:
        :class:`RMAnova`; statistics are NaN when n < 2 or k < 2 or the error term is zero.
    """
    y = np.asarray(table, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"expected a (subjects, conditions) table, got shape {y.shape}")
    y = y[np.all(np.isfinite(y), axis=1)]
    n, k = y.shape
    nan = float("nan")
    if n < 2 or k < 2:
        return RMAnova(n, k, nan, max(k - 1, 0), max((k - 1) * (n - 1), 0), nan, nan, nan, nan)
    grand = y.mean()
    ss_c = n * np.sum((y.mean(axis=0) - grand) ** 2)
    ss_s = k * np.sum((y.mean(axis=1) - grand) ** 2)
    ss_e = np.sum((y - grand) ** 2) - ss_c - ss_s
    df1, df2 = k - 1, (k - 1) * (n - 1)
    if ss_e <= 1e-15 * max(1.0, ss_c):
        return RMAnova(n, k, nan, df1, df2, nan, nan, nan, 1.0 if ss_c > 0 else nan)
    f = (ss_c / df1) / (ss_e / df2)
    p = float(stats.f.sf(f, df1, df2))
    cov = np.cov(y, rowvar=False)
    centre = np.eye(k) - np.full((k, k), 1.0 / k)
    s = centre @ cov @ centre
    eps = float(np.trace(s) ** 2 / (df1 * np.trace(s @ s))) if np.trace(s @ s) > 0 else 1.0
    eps = min(1.0, max(1.0 / df1, eps))
    p_gg = float(stats.f.sf(f, df1 * eps, df2 * eps))
    return RMAnova(n, k, float(f), df1, df2, p, eps, p_gg, float(ss_c / (ss_c + ss_e)))


def friedman(table) -> tuple[float, float]:
    """Friedman test on an ``(n_subjects, k_conditions)`` table (rows with NaN dropped).

    Returns:
        ``(chi2, p)`` from :func:`scipy.stats.friedmanchisquare`; NaN when k < 3 (scipy's
        minimum), n < 2, or all ranks tie.
    """
    y = np.asarray(table, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"expected a (subjects, conditions) table, got shape {y.shape}")
    y = y[np.all(np.isfinite(y), axis=1)]
    if y.shape[1] < 3 or y.shape[0] < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.friedmanchisquare(*y.T)
    return float(res.statistic), float(res.pvalue)


def describe(values, *, confidence: float = 0.95) -> dict:
    """Descriptive statistics of one condition: n, mean, median, std and t CI of the mean."""
    x = _as_1d(values, "values")
    x = x[np.isfinite(x)]
    mean, low, high = mean_ci(x, confidence=confidence)
    return {
        "n": int(x.size),
        "mean": mean,
        "median": float(np.median(x)) if x.size else float("nan"),
        "std": float(x.std(ddof=1)) if x.size > 1 else float("nan"),
        "ci_low": low,
        "ci_high": high,
    }


def pairwise_paired_tests(
    wide: pd.DataFrame, *, alpha: float = 0.05, confidence: float = 0.95
) -> pd.DataFrame:
    """Paired t-tests for every pair of columns with Bonferroni correction over all pairs.

    Each pair uses the rows where both conditions are rated (incomplete pairs are dropped;
    ``n_dropped`` counts them).

    Args:
        wide: one row per unit, one column per condition, NaN where missing.
        alpha: significance level applied to the corrected p-values.

    Returns:
        DataFrame with columns ``a, b, n, n_dropped, mean_a, mean_b, mean_diff, ci_low, ci_high,
        t, df, p, p_bonferroni, d_z, significant`` — one row per pair in column order.
    """
    cols = list(wide.columns)
    pairs = list(itertools.combinations(cols, 2))
    rows = []
    for a, b in pairs:
        xa = wide[a].to_numpy(dtype=np.float64)
        xb = wide[b].to_numpy(dtype=np.float64)
        either = np.isfinite(xa) | np.isfinite(xb)
        both = np.isfinite(xa) & np.isfinite(xb)
        res = paired_ttest(xa, xb, confidence=confidence)
        rows.append(
            {
                "a": a,
                "b": b,
                "n": res.n,
                "n_dropped": int(either.sum() - both.sum()),
                "mean_a": float(np.mean(xa[both])) if both.any() else float("nan"),
                "mean_b": float(np.mean(xb[both])) if both.any() else float("nan"),
                "mean_diff": res.mean_diff,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "t": res.t,
                "df": res.df,
                "p": res.p,
                "d_z": res.d_z,
            }
        )
    out = pd.DataFrame(
        rows,
        columns=["a", "b", "n", "n_dropped", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "t", "df", "p", "d_z"],
    )
    out.insert(12, "p_bonferroni", bonferroni(out["p"].to_numpy(), max(len(pairs), 1)) if len(pairs) else [])
    out["significant"] = out["p_bonferroni"] < alpha
    return out


def bootstrap_mean_ci(values, *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (``scipy.stats.bootstrap``), NaNs ignored, seeded.

    Fewer than two finite values, or all equal, give ``(mean, mean)``.
    """
    v = _as_1d(values, "values")
    v = v[np.isfinite(v)]
    if v.size < 2 or np.ptp(v) == 0:
        m = float(v.mean()) if v.size else float("nan")
        return m, m
    res = stats.bootstrap((v,), np.mean, n_resamples=resamples, confidence_level=confidence, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_p(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples (1.0 when every difference is 0)."""
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"wilcoxon: paired samples of different sizes {a.size} and {b.size}")
    if not np.any(a - b != 0):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
