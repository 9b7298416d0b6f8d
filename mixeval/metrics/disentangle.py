"""Disentanglement metrics of Zaidi et al.'s review as used by Koo et al.: DCIMIG, DCI (random forest), MIG, SAP.

Pure functions over numpy arrays: ``factors`` is ``(n_samples, n_factors)`` (ground-truth
generative factors, e.g. FX parameters), ``codes`` is ``(n_samples, n_codes)`` (embeddings).
Every metric is named after the quantity it returns (no ``*_score`` suffix): higher is better, best value 1.

Each function follows the reference code (ubisoft-laforge-disentanglement-metrics,
``src/metrics/{dcimig,dci,mig,sap}.py``, configuration of ``src/experiments/config.py``); where the
reference crashes or has a quirk the docstring says what is done instead. Common to all:

* inputs are validated (2-D, same rows, ≥ 2 samples, finite) → :class:`MixevalError`;
* constant factor columns are dropped with a ``UserWarning`` (the reference divides by their
  zero entropy or crashes on them); all-constant factors raise.

References:
    J. Zaidi, J. Boilard, G. Gagnon, M.-A. Carbonneau, "Measuring disentanglement: a review of
    metrics", arXiv:2012.09276, 2020.
    A. Sepliarskaia, J. Kiseleva, M. de Rijke, "How to not measure disentanglement",
    arXiv:1910.05587, 2019 (DCIMIG).
    C. Eastwood, C. K. I. Williams, "A framework for the quantitative evaluation of disentangled
    representations", ICLR 2018 (DCI).
    R. T. Q. Chen et al., "Isolating sources of disentanglement in VAEs", NeurIPS 2018 (MIG).
    A. Kumar, P. Sattigeri, A. Balakrishnan, "Variational inference of disentangled latent
    concepts from unlabeled observations", ICLR 2018 (SAP).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.utils.parallel import delayed
from sklearn.model_selection import KFold
from sklearn.preprocessing import minmax_scale

from mixeval.errors import MixevalError
from mixeval.metrics.forest_grid import (
    depth_classes,
    fold_mse_by_depth,
    forest_seeds,
    grid_codes,
    refit_forest,
    run_fits,
    workers,
)
from mixeval.metrics.information import (
    check_factors_codes,
    dci_from_importance,
    discretize,
    drop_constant_columns,
    entropy,
    mutual_information_matrix,
    to_labels,
    top_gap,
)
from mixfx.progress import ProgressFn

__all__ = ["DCIResult", "dci", "dci_from_importance", "dcimig", "forest_seeds", "mig", "sap"]

logger = logging.getLogger(__name__)


def _discrete_inputs(factors, codes, nb_bins: int, continuous_factors: bool):
    f, c = check_factors_codes(factors, codes)
    f, _ = drop_constant_columns(f, "factors")
    f_lab = discretize(f, nb_bins) if continuous_factors else to_labels(f)[0]
    return f_lab, discretize(c, nb_bins)


def dcimig(factors: np.ndarray, codes: np.ndarray, *, nb_bins: int = 10, continuous_factors: bool = True) -> float:
    """DCIMIG (Sepliarskaia et al.) exactly as in the reference ``dcimig.py``.

    Factors (if ``continuous_factors``) and codes (always) are min-max scaled per column and cut
    into ``nb_bins`` equal-width bins (:func:`~mixeval.metrics.information.discretize`); ``I`` is
    the plug-in mutual information in bits. Each code votes for its best factor with the gap to
    its second-best factor; each factor keeps its largest vote:

    .. math::
        j_i = \\arg\\max_j I(z_i; v_j), \\quad
        D_i = I(z_i; v_{j_i}) - \\max_{k \\ne j_i} I(z_i; v_k), \\quad
        \\mathrm{DCIMIG} = \\frac{\\sum_j \\max_{i: j_i = j} D_i}{\\sum_j H(v_j)}

    (a factor no code picks contributes 0). Deterministic, in [0, 1]. Ties in the argmax go to the
    first factor (gap 0). Plug-in MI is biased upwards (≈ 0.23 bit for 10×10 bins at N = 250), so
    pure noise does not score exactly 0, and with many codes some align with a factor by chance.

    Differences to the reference (only where it fails): constant factors are dropped with a
    warning (no effect on the value); with a single factor the second-best MI is taken as 0
    (the reference raises ``IndexError``), i.e. the score becomes ``max_i I(z_i; v) / H(v)``.

    Args:
        factors: ``(n_samples, n_factors)``; continuous values, or discrete labels if
            ``continuous_factors=False`` (then used as given — but codes are still binned into
            ``nb_bins`` bins, so a factor with more than ``nb_bins`` classes cannot be fully captured).
        codes: ``(n_samples, n_codes)`` continuous.
        nb_bins: equal-width bins per column (reference: 10).
        continuous_factors: bin the factors (reference: True).

    Returns:
        DCIMIG score in [0, 1].

    Raises:
        MixevalError: invalid input (shape, NaN/inf, all factors constant).

    Example:
        >>> f = np.random.default_rng(0).uniform(size=(2000, 4))
        >>> round(dcimig(f, f), 2)  # ideal codes; the plug-in bias keeps it just below 1
        0.99
    """
    f_lab, c_lab = _discrete_inputs(factors, codes, nb_bins, continuous_factors)
    mi = mutual_information_matrix(f_lab, c_lab)  # (K, L) bits
    best, gap = top_gap(mi, axis=0)  # per code
    per_factor = np.zeros(mi.shape[0])
    np.maximum.at(per_factor, best, gap)
    return float(np.clip(per_factor.sum() / entropy(f_lab).sum(), 0.0, 1.0))


def mig(
    factors: np.ndarray,
    codes: np.ndarray,
    *,
    nb_bins: int = 10,
    continuous_factors: bool = True,
    normalization: str = "code",
) -> float:
    """Mutual information gap, as the reference ``mig.py`` ("MIG-RMIG" in Zaidi et al.).

    Binning and MI as in :func:`dcimig`. For each factor, the gap between its best and
    second-best code, averaged over factors:

    * ``normalization="code"`` (reference): each MI is divided by the **code's** entropy first
      (pyitlib ``information_mutual_normalised(..., norm_factor='Y')``),
      :math:`\\mathrm{MIG} = \\frac1K \\sum_j \\big(\\tilde I_{(1)j} - \\tilde I_{(2)j}\\big)`,
      :math:`\\tilde I_{ij} = I(z_i; v_j) / H(z_i)`; a constant code gets :math:`\\tilde I = 0`
      (the reference gives NaN).
    * ``normalization="factor"``: Chen et al. / disentanglement_lib,
      :math:`\\frac1K \\sum_j (I_{(1)j} - I_{(2)j}) / H(v_j)`.

    With one code the second-best is taken as 0 (reference: ``IndexError``). Constant factors are
    dropped with a warning (the reference would count them as a 0 gap in the mean).

    Args:
        factors: ``(n_samples, n_factors)``.
        codes: ``(n_samples, n_codes)``.
        nb_bins: equal-width bins per column (reference: 10).
        continuous_factors: bin the factors (reference: True).
        normalization: ``"code"`` or ``"factor"``.

    Returns:
        MIG in [0, 1].

    Raises:
        MixevalError: invalid input or ``normalization``.
    """
    if normalization not in ("code", "factor"):
        raise MixevalError(f"normalization: expected 'code' or 'factor', got {normalization!r}")
    f_lab, c_lab = _discrete_inputs(factors, codes, nb_bins, continuous_factors)
    mi = mutual_information_matrix(f_lab, c_lab)
    if normalization == "code":
        h_c = entropy(c_lab)
        mi = np.divide(mi, h_c, out=np.zeros_like(mi), where=h_c > 0)
        _, gap = top_gap(mi, axis=1)
    else:
        _, gap = top_gap(mi, axis=1)
        gap = gap / entropy(f_lab)
    return float(np.clip(np.mean(gap), 0.0, 1.0))


def sap(factors: np.ndarray, codes: np.ndarray) -> float:
    """SAP score, regression variant (the reference configuration ``regression=True``).

    :math:`S_{ji}` is the training-set :math:`R^2` (clipped at 0) of a 1-D linear regression of
    factor :math:`j` on code :math:`i`, which equals the squared Pearson correlation; computed for
    all pairs at once. SAP is the mean over factors of the gap between the two largest
    :math:`S_{ji}` over codes. A constant code gets :math:`S = 0` (its regression predicts the
    mean); with one code the second-best is 0. Constant factors are dropped with a warning (the
    reference would count their 0 gap in the mean). The reference's classification variant
    (decision trees per pair) is not provided.

    Args:
        factors: ``(n_samples, n_factors)`` continuous.
        codes: ``(n_samples, n_codes)``.

    Returns:
        SAP in [0, 1].

    Raises:
        MixevalError: invalid input.
    """
    f, c = check_factors_codes(factors, codes)
    f, _ = drop_constant_columns(f, "factors")
    f = np.asarray(f, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    fz = f - f.mean(axis=0)
    cz = c - c.mean(axis=0)
    f_norm = np.sqrt((fz**2).sum(axis=0))
    c_norm = np.sqrt((cz**2).sum(axis=0))
    cov = fz.T @ cz
    denom = np.outer(f_norm, c_norm)
    r = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    _, gap = top_gap(np.clip(r**2, 0.0, 1.0), axis=1)
    return float(np.clip(np.mean(gap), 0.0, 1.0))


# --------------------------------------------------------------------------------------- DCI


@dataclass(frozen=True, eq=False)
class DCIResult:
    """Result of :func:`dci`. Unpacks as ``D, C, I = dci(...)`` (the reference's return order).

    Attributes:
        disentanglement: D ("Mod" in Zaidi et al.), importance-weighted mean of per-code scores.
        completeness: C ("Comp"), unweighted mean over factors.
        informativeness: I ("Expl"), mean over factors of ``max(1 - 12·MSE_train, 0)`` — the
            reference's training-set score.
        informativeness_cv: same formula with the cross-validated MSE of the selected
            configuration (held-out; not in the reference, slightly optimistic because the
            configuration was chosen on it).
        importance: ``(n_factors, n_codes)`` forest importances (negatives clipped to 0).
        factor_informativeness: ``(n_factors,)`` training-set scores per factor.
        factor_completeness: ``(n_factors,)``.
        best_params: per factor, the selected ``(max_depth, max_features)``.
        factor_indices: columns of the input ``factors`` that were used (constants dropped).
    """

    disentanglement: float
    completeness: float
    informativeness: float
    informativeness_cv: float
    importance: np.ndarray
    factor_informativeness: np.ndarray
    factor_completeness: np.ndarray
    best_params: tuple[tuple[int, float], ...]
    factor_indices: tuple[int, ...]

    def __iter__(self) -> Iterator[float]:
        return iter((self.disentanglement, self.completeness, self.informativeness))

    def to_dict(self) -> dict[str, float]:
        """The four scalar scores."""
        return {
            "disentanglement": self.disentanglement,
            "completeness": self.completeness,
            "informativeness": self.informativeness,
            "informativeness_cv": self.informativeness_cv,
        }


def dci(
    factors: np.ndarray,
    codes: np.ndarray,
    *,
    seed: int | np.random.Generator | None = 0,
    n_jobs: int | None = -1,
    reference_quirks: bool = False,
    max_depths: Sequence[int] = (8, 16, 32, 64, 128),
    max_features: Sequence[float] = (0.2, 0.4, 0.8, 1.0),
    n_estimators: int = 10,
    n_splits: int = 10,
    progress: ProgressFn | None = None,
    share_deep_fits: bool = False,
    backend: str = "auto",
) -> DCIResult:
    """DCI with random forests, as the reference ``dci(..., model='random_forest')``.

    1. Factors and codes are min-max scaled per column to [0, 1].
    2. For each factor, a ``RandomForestRegressor(n_estimators=10)`` is chosen on the grid
       ``max_depths × max_features`` (reference: {8,16,32,64,128} × {0.2,0.4,0.8,1.0}) by the
       lowest mean MSE over an **unshuffled** ``KFold(n_splits=10)`` (so row order matters;
       ties keep the earlier grid point), then refit on all samples.
    3. Informativeness (Expl) per factor is ``max(1 - 12·MSE, 0)`` where, as in the reference,
       the MSE is **in-sample** (the refit forest predicting its own training data; 1/12 is the
       variance of U(0,1), so 0 ≈ mean predictor). This is optimistic (≈ 0.8 for pure-noise
       2048-d codes at N = 250); ``informativeness_cv`` gives the held-out CV counterpart.
    4. The forests' impurity importances form ``R`` (n_factors, n_codes) →
       :func:`dci_from_importance` for D and C.

    Seeds (:mod:`mixeval.metrics.forest_grid`): every (factor, max_features, fold, depth class) gets
    its own ``random_state`` from ``seed`` (:func:`forest_seeds`, ``numpy.random.SeedSequence`` spawn
    keys), the refit of each factor another one; results do not depend on ``n_jobs``. By default each
    depth limit is its own class, so every grid point's CV score is an independent draw, as in the
    reference (which seeds nothing and draws from numpy's global RNG, so its values cannot be
    matched bit for bit, only in distribution). One shared ``random_state`` for all fits made limits
    the trees never reach score identically and compared depth 8 with them on the same bootstrap
    draws, which biased the choice towards depth 8 (issue 10).

    ``share_deep_fits=True`` trades that joint law for speed: the limits ≥ 2·⌈log2 n_train⌉ share a
    class, the deepest is fitted first and serves every shallower limit its trees did not reach —
    provably sklearn's forest with that limit and seed (tested) — so depths 16–128 on 225 rows cost
    one fit instead of four. Each grid point is still an exact draw, but the shared limits tie where
    the reference has independent draws, which shifts the selection towards the shallow limits
    (:func:`~mixeval.metrics.forest_grid.depth_classes`; measured in ``benchmarks/bench_metrics.py``).

    Cost: ``n_factors × (|grid|·n_splits + 1)`` forest fits (fewer with ``share_deep_fits``). The
    (factor, max_features, fold) tasks and the refits run in threads (``n_jobs``; sklearn's tree
    building releases the GIL); jobs under about a second of fitting stay in the calling thread.

    Reference quirks (``reference_quirks=False`` is the sane default):

    * ``break`` in the D loop: see :func:`dci_from_importance` (quirk mode reproduces it).
    * constant factor columns: dropped with a warning; quirk mode keeps them, which gives that
      factor Expl = 1 and Comp = 0 (the reference under numpy 1.x; it crashes under numpy 2).
    * one factor / one code: D / C are NaN with a warning; quirk mode raises (reference crashes).
    * negative importances (−1e−17 from sklearn) crash the reference: clipped to 0 in both modes.

    Args:
        factors: ``(n_samples, n_factors)`` continuous factors (discrete ones are unsupported,
            as in the reference; they are treated as numbers).
        codes: ``(n_samples, n_codes)``.
        seed: root of the forests' seeds (:func:`forest_seeds`); a ``numpy.random.Generator`` draws
            one int; None is unseeded (non-reproducible).
        n_jobs: threads for the fits (joblib; -1 = all cores, None/1 = serial); jobs under about a
            second of fitting run serially whatever ``n_jobs`` says.
        reference_quirks: reproduce the reference's behaviours listed above.
        max_depths: grid of ``max_depth``.
        max_features: grid of ``max_features`` (fractions of the codes).
        n_estimators: trees per forest (reference: 10).
        n_splits: CV folds (reference: 10). ``0`` skips the cross-validation, which only picks
            the grid point: allowed with a one-point grid, gives the same D, C and I as any
            ``n_splits`` with one fit per factor instead of ``n_splits + 1``;
            ``informativeness_cv`` is then NaN.
        progress: called as ``progress(done, total, "forest fits")`` after each (factor, max_features,
            fold) task and each refit; ``total = n_factors·(|max_features|·n_splits + 1)``.
        share_deep_fits: one seed class for the deep limits (faster, not the reference's joint law).
        backend: forests from ``"numba"`` (:mod:`mixeval.metrics.random_forest`: sklearn's forest
            law on codes presorted once, several times faster per core; equal to sklearn in
            distribution, not bit for bit), ``"sklearn"`` (``RandomForestRegressor``), or
            ``"auto"`` (numba when it imports). The seeds are the same numbers for both, but
            each backend has its own random streams, so the two give different draws.

    Returns:
        :class:`DCIResult`; ``D, C, I = dci(...)`` also works.

    Raises:
        MixevalError: invalid input or settings.

    Example:
        >>> f = np.random.default_rng(0).uniform(size=(300, 3))
        >>> d, c, i = dci(f, f, max_depths=(8,), max_features=(1.0,), n_splits=3)
        >>> round(d, 2), round(c, 2), round(i, 2)
        (1.0, 1.0, 1.0)
    """
    f, c = check_factors_codes(factors, codes)
    if reference_quirks:
        kept = np.arange(f.shape[1])
        if f.shape[1] < 2 or c.shape[1] < 2:
            raise MixevalError(
                f"dci: the reference needs ≥ 2 factors and ≥ 2 codes, got {f.shape[1]} and {c.shape[1]}"
            )
    else:
        f, kept = drop_constant_columns(f, "factors")
    n = f.shape[0]
    if not (2 <= n_splits <= n or n_splits == 0):
        raise MixevalError(f"n_splits: expected 2..{n} (number of samples) or 0 (no CV), got {n_splits}")
    grid = [(int(md), float(mf)) for md in max_depths for mf in max_features]
    if not grid:
        raise MixevalError("dci: max_depths and max_features must not be empty")
    if n_splits == 0 and len(grid) != 1:
        raise MixevalError(f"n_splits=0 (no CV) needs a one-point grid, got {len(grid)} points")
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**31 - 1))
    y_all = minmax_scale(np.asarray(f, dtype=np.float64))
    try:
        x = grid_codes(minmax_scale(c), backend)  # float32: what sklearn's trees convert to anyway
    except ValueError as err:
        raise MixevalError(str(err)) from None
    k = y_all.shape[1]
    depths = [int(md) for md in max_depths]
    mfs = [float(mf) for mf in max_features]
    folds = list(KFold(n_splits=n_splits).split(x.x)) if n_splits else []
    classes = depth_classes(depths, n - -(-n // n_splits) if n_splits else n, share_deep=share_deep_fits)
    seeds, refit_seeds = forest_seeds(seed, k, len(mfs), n_splits, max(classes) + 1, len(grid))
    total = k * (len(mfs) * n_splits + 1)
    jobs = workers(n_jobs, total, float(n) * x.x.shape[1] * n_estimators * (total - k) * len(set(classes)))
    tasks = [
        delayed(fold_mse_by_depth)(x, y_all[:, j], tr, te, depths, classes, mf, n_estimators, seeds[j, m, i])
        for j in range(k)
        for m, mf in enumerate(mfs)
        for i, (tr, te) in enumerate(folds)
    ]
    logger.debug("dci: %d factors x %d configurations x %d folds, %d threads", k, len(grid), n_splits, jobs)
    if n_splits:
        per_fold = np.asarray(run_fits(tasks, jobs, progress, 0, total)).reshape(k, len(mfs), n_splits, len(depths))
        cv_mse = per_fold.mean(axis=2).transpose(0, 2, 1).reshape(k, len(grid))  # grid order: depth-major
    else:
        cv_mse = np.full((k, 1), np.nan)
    best = np.argmin(cv_mse, axis=1)  # first minimum = reference's strict "<"
    refits = run_fits(
        [delayed(refit_forest)(x, y_all[:, j], *grid[best[j]], n_estimators, int(refit_seeds[j, best[j]]))
         for j in range(k)],
        jobs, progress, total - k, total,
    )
    mse_train = np.array([m for m, _ in refits])
    importance = np.clip(np.stack([w for _, w in refits]), 0.0, None)
    info = np.maximum(1.0 - 12.0 * mse_train, 0.0)
    info_cv = np.maximum(1.0 - 12.0 * cv_mse[np.arange(k), best], 0.0)
    d, comp, comp_f = dci_from_importance(importance, reference_quirks=reference_quirks)
    return DCIResult(
        disentanglement=d,
        completeness=comp,
        informativeness=float(np.mean(info)),
        informativeness_cv=float(np.mean(info_cv)),
        importance=importance,
        factor_informativeness=info,
        factor_completeness=comp_f,
        best_params=tuple(grid[b] for b in best),
        factor_indices=tuple(int(i) for i in kept),
    )
