"""Discrete information theory, DCI's importance-entropy scores and input checks for the disentanglement metrics.

Everything here is a pure function over numpy arrays (no I/O, no randomness). Conventions follow
the reference code of Zaidi et al. (ubisoft-laforge-disentanglement-metrics, ``src/utils.py``):
continuous columns are min-max scaled to [0, 1] and cut into ``nb_bins`` equal-width bins, and
entropies / mutual informations are plug-in (maximum-likelihood) estimates in bits.
The metrics themselves are in :mod:`mixeval.metrics.disentangle`.

Layout: rows are samples, columns are variables — ``factors`` is ``(n_samples, n_factors)`` and
``codes`` is ``(n_samples, n_codes)``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.preprocessing import minmax_scale

from mixeval.errors import MixevalError

__all__ = [
    "check_matrix",
    "check_factors_codes",
    "dci_from_importance",
    "drop_constant_columns",
    "discretize",
    "to_labels",
    "entropy",
    "mutual_information_matrix",
    "normalized_entropy",
    "top_gap",
]

# Upper bound on the number of joint-histogram cells held at once (int64 -> 64 MiB).
_MAX_CELLS = 1 << 23


def check_matrix(x: object, name: str, *, min_rows: int = 2) -> np.ndarray:
    """Return ``x`` as a finite, numeric 2-D array or raise :class:`MixevalError`.

    Args:
        x: array-like ``(n_samples, n_columns)``.
        name: what the array is (``"factors"``, ``"codes"``), used in the message.
        min_rows: smallest allowed number of samples.

    Returns:
        The array (float dtypes are kept, so float32 embeddings stay float32; bools and
        integers are kept as they are).

    Raises:
        MixevalError: not 2-D, fewer than ``min_rows`` rows, no columns, not numeric, or
            containing NaN / inf.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise MixevalError(f"{name}: expected a 2-D array (n_samples, n_columns), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise MixevalError(f"{name}: expected at least {min_rows} samples (rows), got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise MixevalError(f"{name}: expected at least 1 column, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise MixevalError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise MixevalError(
                f"{name}: {int(bad.sum())} NaN/inf value(s) (first at row {row}, column {col}); "
                "only finite numbers are allowed"
            )
    return arr


def check_factors_codes(factors: object, codes: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate a ``(factors, codes)`` pair: both finite 2-D, same number of rows (≥ 2).

    Raises:
        MixevalError: on any violation, naming the array and the shape found.
    """
    f = check_matrix(factors, "factors")
    c = check_matrix(codes, "codes")
    if f.shape[0] != c.shape[0]:
        raise MixevalError(
            f"factors and codes: expected the same number of rows (samples), "
            f"got {f.shape[0]} and {c.shape[0]}"
        )
    return f, c


def drop_constant_columns(x: np.ndarray, name: str = "factors") -> tuple[np.ndarray, np.ndarray]:
    """Remove columns that take a single value, with a warning naming them.

    A constant factor has zero entropy: it carries no information, makes DCIMIG's denominator
    0 when it is the only factor and crashes the reference DCI (see ``metrics_notes.md`` §2).

    Args:
        x: ``(n_samples, n_columns)``.
        name: used in the warning and error messages.

    Returns:
        ``(x_kept, kept)`` — the non-constant columns and their original indices ``(n_kept,)``.

    Raises:
        MixevalError: if every column is constant.
    """
    varying = np.any(x != x[:1], axis=0)
    kept = np.flatnonzero(varying)
    if kept.size == 0:
        raise MixevalError(f"{name}: all {x.shape[1]} column(s) are constant; at least one must vary")
    if kept.size < x.shape[1]:
        dropped = np.flatnonzero(~varying).tolist()
        warnings.warn(f"{name}: dropping constant column(s) {dropped}", UserWarning, stacklevel=3)
    return x[:, kept], kept


def discretize(x: np.ndarray, nb_bins: int = 10) -> np.ndarray:
    """Equal-width binning of each column over its own [min, max] range.

    Same rule as the reference (``minmax_scale`` then ``get_bin_index``): with edges
    ``e = linspace(0, 1, nb_bins + 1)[:-1]`` the label of a scaled value ``u`` is the number of
    edges ``<= u``, so labels run 1..nb_bins, the column maximum falls into bin ``nb_bins`` and a
    constant column is all 1 (one bin).

    Args:
        x: ``(n_samples, n_columns)`` real values.
        nb_bins: number of bins (≥ 1).

    Returns:
        ``(n_samples, n_columns)`` int64 labels in ``1..nb_bins``.
    """
    if int(nb_bins) != nb_bins or nb_bins < 1:
        raise MixevalError(f"nb_bins: expected a positive integer, got {nb_bins!r}")
    scaled = minmax_scale(x)
    edges = np.linspace(0.0, 1.0, int(nb_bins) + 1)[:-1]
    return np.digitize(scaled, edges, right=False).astype(np.int64)


def to_labels(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Map each column's distinct values to consecutive integers.

    Non-negative integer columns whose maximum is small are used as they are (empty bins do
    not change entropies); anything else is relabelled column by column with ``np.unique``.

    Args:
        x: ``(n_samples, n_columns)`` discrete values.

    Returns:
        ``(labels, n_bins)`` — int64 labels in ``0..n_bins-1`` of the same shape, and the shared
        number of label slots.
    """
    if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() < 4 * x.shape[0] + 16:
        labels = x.astype(np.int64, copy=False)
        return labels, int(labels.max()) + 1
    labels = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        labels[:, j] = np.unique(x[:, j], return_inverse=True)[1].reshape(-1)
    return labels, int(labels.max()) + 1


def _xlogx_table(n: int) -> np.ndarray:
    """``t[k] = k·ln k`` for ``k = 0..n`` (with ``0·ln 0 = 0``)."""
    k = np.arange(n + 1, dtype=np.float64)
    out = np.zeros_like(k)
    out[1:] = k[1:] * np.log(k[1:])
    return out


def entropy(labels: np.ndarray, *, base: float = 2.0) -> np.ndarray:
    """Plug-in entropy of each column of a discrete matrix.

    .. math:: H(X) = -\\sum_a \\hat p(a) \\log \\hat p(a), \\quad \\hat p(a) = n_a / N

    Args:
        labels: ``(n_samples, n_columns)`` discrete values (any numbers; see :func:`to_labels`).
        base: logarithm base (2 → bits, e → nats).

    Returns:
        ``(n_columns,)`` float64 entropies, ≥ 0.
    """
    lab, n_bins = to_labels(np.asarray(labels))
    n, d = lab.shape
    counts = np.bincount((lab + np.arange(d) * n_bins).ravel(), minlength=d * n_bins).reshape(d, n_bins)
    table = _xlogx_table(n)
    h = np.log(n) - table[counts].sum(axis=1) / n
    return np.maximum(h, 0.0) / np.log(base)


def mutual_information_matrix(x: np.ndarray, y: np.ndarray, *, base: float = 2.0) -> np.ndarray:
    """Plug-in mutual information between every column of ``x`` and every column of ``y``.

    .. math::
        I(X;Y) = \\frac{1}{N}\\Big[\\sum_{ab} n_{ab}\\ln n_{ab} - \\sum_a n_a \\ln n_a
                 - \\sum_b n_b \\ln n_b\\Big] + \\ln N

    (identical to ``sklearn.metrics.mutual_info_score`` and pyitlib's ``information_mutual``,
    up to the log base). Vectorised: for each column of the narrower matrix one ``bincount``
    builds the joint histograms against all columns of the other at once; the ``n ln n`` terms
    come from a lookup table. Memory is bounded by processing the wide side in blocks.

    Args:
        x: ``(n_samples, n_x)`` discrete values.
        y: ``(n_samples, n_y)`` discrete values.
        base: logarithm base (2 → bits).

    Returns:
        ``(n_x, n_y)`` float64, ≥ 0.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise MixevalError(
            f"mutual_information_matrix: expected 2-D arrays with equal rows, got {x.shape} and {y.shape}"
        )
    if x.shape[1] > y.shape[1]:
        return mutual_information_matrix(y, x, base=base).T
    lx, bx = to_labels(x)
    ly, by = to_labels(y)
    n, nx = lx.shape
    ny = ly.shape[1]
    table = _xlogx_table(n)
    cx = np.bincount((lx + np.arange(nx) * bx).ravel(), minlength=nx * bx).reshape(nx, bx)
    cy = np.bincount((ly + np.arange(ny) * by).ravel(), minlength=ny * by).reshape(ny, by)
    hx = table[cx].sum(axis=1)  # Σ n_a ln n_a, (nx,)
    hy = table[cy].sum(axis=1)  # (ny,)
    block = max(1, _MAX_CELLS // (bx * by))
    mi = np.empty((nx, ny), dtype=np.float64)
    for start in range(0, ny, block):
        stop = min(ny, start + block)
        w = stop - start
        # joint cell index for y-column j (in block), y-label b, x-label a
        base_idx = (ly[:, start:stop] + np.arange(w) * by) * bx  # (n, w)
        for i in range(nx):
            joint = np.bincount((base_idx + lx[:, i : i + 1]).ravel(), minlength=w * by * bx)
            hxy = table[joint].reshape(w, by * bx).sum(axis=1)
            mi[i, start:stop] = hxy - hx[i] - hy[start:stop]
    mi = mi / n + np.log(n)
    return np.maximum(mi, 0.0) / np.log(base)


def top_gap(m: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Argmax along ``axis`` (first on ties) and best minus second-best (the best alone if only one)."""
    best = np.argmax(m, axis=axis)
    top = np.max(m, axis=axis)
    n = m.shape[axis]
    second = np.partition(m, n - 2, axis=axis).take(n - 2, axis=axis) if n > 1 else 0.0
    return best, top - second


def normalized_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of distributions ``p`` (summing to 1 along ``axis``) divided by ``log(size)``."""
    n = p.shape[axis]
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -plogp.sum(axis=axis) / np.log(n)


def dci_from_importance(importance: np.ndarray, *, reference_quirks: bool = False) -> tuple[float, float, np.ndarray]:
    """Disentanglement and completeness from a ``(n_factors, n_codes)`` importance matrix ``R``.

    .. math::
        D = \\sum_i \\rho_i (1 - H_K(P_{\\cdot i})), \\quad
        \\rho_i = \\frac{\\sum_j R_{ji}}{\\sum_{ji} R_{ji}}, \\quad
        C = \\frac1K \\sum_j (1 - H_L(P_{j \\cdot}))

    with :math:`H_K` the entropy in base K (factors) of a code's column normalised to sum 1 and
    :math:`H_L` the entropy in base L (codes) of a factor's row normalised to sum 1. Negative
    entries are clipped to 0. A factor row of zeros gets completeness 0 (as the reference under
    numpy 1.x); an all-zero matrix gives D = 0.

    Default: codes with zero total importance simply get weight 0. ``reference_quirks=True``
    reproduces the reference loop's ``break``: at the first code with zero total importance the
    loop stops, so only the codes before it count towards D (D = 0 if it is the first code).
    With ``n_factors == 1`` (``n_codes == 1``) the entropy base is 1: D (C) is NaN with a
    warning by default; the reference raises ``ZeroDivisionError``, reproduced as MixevalError.

    Returns:
        ``(D, C, completeness_per_factor)``.
    """
    r = np.clip(np.asarray(importance, dtype=np.float64), 0.0, None)
    if r.ndim != 2:
        raise MixevalError(f"importance: expected a 2-D array (n_factors, n_codes), got shape {r.shape}")
    k, l = r.shape
    if reference_quirks and (k < 2 or l < 2):
        raise MixevalError(f"importance: the reference DCI needs ≥ 2 factors and ≥ 2 codes, got shape {r.shape}")
    rho = r.sum(axis=0)
    if reference_quirks:
        zero = np.flatnonzero(rho == 0)
        if zero.size:
            rho = rho.copy()
            rho[zero[0] :] = 0.0
    if k < 2:
        msg = "dci: disentanglement is undefined with a single factor; returning NaN"
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        d = float("nan")
    elif rho.sum() == 0:
        d = 0.0
    else:
        p = r / np.where(rho > 0, rho, 1.0)
        d_code = 1.0 - normalized_entropy(p, axis=0)
        d = float(np.clip(np.sum(d_code * rho) / rho.sum(), 0.0, 1.0))
    row = r.sum(axis=1)
    if l < 2:
        msg = "dci: completeness is undefined with a single code; returning NaN"
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        c_f = np.full(k, np.nan)
    else:
        q = r / np.where(row > 0, row, 1.0)[:, None]
        c_f = np.where(row > 0, np.clip(1.0 - normalized_entropy(q, axis=1), 0.0, 1.0), 0.0)
    return d, float(np.mean(c_f)), c_f
