r"""FX retrieval: do embeddings of the same FX configuration on different content find each other?

Each item ``i`` has a code ``z_i`` and a configuration id ``c_i``; items sharing an id were
processed with the same FX configuration (on different content). Every item in turn is a query;
all *other* items are ranked by cosine similarity to it, and the items with the same id are its
positives. With :math:`\rho_i` the rank (1-based) of the query's first positive,

.. math::
    \mathrm{R@}k = \frac{1}{|Q|} \sum_{i \in Q} [\rho_i \le k], \qquad
    \mathrm{MRR} = \frac{1}{|Q|} \sum_{i \in Q} \frac{1}{\rho_i},

over the queries :math:`Q` that have at least one positive. R@k (recall at k, "hit rate") is the
fraction of queries with a positive among the ``k`` nearest items; MRR is the mean reciprocal rank.
Both are higher-is-better, best value 1 (the package docstring of :mod:`mixeval.metrics` states the naming).

Ties are counted against the query: a negative as similar as the best positive ranks before it, so
codes that carry no information (all equal) score the worst possible, never a lucky 1.
Pure numpy, no file I/O.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from mixeval.errors import MixevalError
from mixeval.metrics.information import check_matrix

__all__ = ["first_positive_ranks", "fx_retrieval", "retrieval_chance"]

_CHUNK = 1024


def _check(codes: object, config_ids: object) -> tuple[np.ndarray, np.ndarray]:
    z = check_matrix(codes, "codes")
    ids = np.asarray(config_ids)
    if ids.ndim != 1 or ids.shape[0] != z.shape[0]:
        raise MixevalError(f"config_ids: expected shape ({z.shape[0]},) (one id per code row), got {ids.shape}")
    norms = np.linalg.norm(z, axis=1)
    if np.any(norms == 0):
        raise MixevalError(f"codes: cosine similarity is undefined for all-zero rows, got {int(np.sum(norms == 0))}")
    return z / norms[:, None], ids


def _check_ks(ks: Sequence[int]) -> None:
    if not all(isinstance(k, (int, np.integer)) and k >= 1 for k in ks):
        raise MixevalError(f"ks: expected positive integers, got {list(ks)}")


def first_positive_ranks(codes: np.ndarray, config_ids: np.ndarray) -> np.ndarray:
    """Rank (1-based) of each query's first same-configuration item among all other items.

    Args:
        codes: ``(n, d)`` embeddings (no all-zero rows).
        config_ids: ``(n,)`` configuration ids (any comparable values).

    Returns:
        ``(n,)`` float array; NaN for queries without a positive.

    Raises:
        MixevalError: bad shapes, non-finite or all-zero codes.
    """
    z, ids = _check(codes, config_ids)
    _, labels = np.unique(ids, return_inverse=True)
    n = z.shape[0]
    ranks = np.full(n, np.nan)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, n))
        sim = z[rows] @ z.T  # (chunk, n)
        sim[np.arange(rows.size), rows] = np.nan  # the query itself is not a candidate
        pos = labels[rows][:, None] == labels[None, :]
        pos[np.arange(rows.size), rows] = False
        best = np.where(pos, sim, -np.inf).max(axis=1)  # most similar positive
        neg = ~pos
        neg[np.arange(rows.size), rows] = False
        ahead = np.sum(neg & (sim >= best[:, None]), axis=1)  # ties count against the query
        has = pos.any(axis=1)
        ranks[rows[has]] = 1.0 + ahead[has]
    return ranks


def fx_retrieval(
    codes: np.ndarray, config_ids: np.ndarray, *, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k and MRR of same-configuration retrieval by cosine similarity (module docstring).

    Args:
        codes: ``(n, d)`` embeddings.
        config_ids: ``(n,)`` configuration ids; items sharing an id share an FX configuration.
        ks: cut-offs for recall (positive integers; a ``k`` ≥ ``n − 1`` gives 1).

    Returns:
        ``{"R@1": …, "R@5": …, "R@10": …, "MRR": …}`` (one ``R@k`` per ``k``), each in [0, 1].
        NaN, with a warning, when no item has a positive.

    Raises:
        MixevalError: bad shapes, non-finite or all-zero codes, a ``k`` < 1.

    Example:
        >>> ids = np.repeat([0, 1, 2], 2)
        >>> fx_retrieval(np.eye(3)[ids], ids, ks=(1,))
        {'R@1': 1.0, 'MRR': 1.0}
    """
    _check_ks(ks)
    ranks = first_positive_ranks(codes, config_ids)
    ranks = ranks[~np.isnan(ranks)]
    if ranks.size == 0:
        warnings.warn("fx_retrieval: no configuration id occurs twice; retrieval is undefined (NaN)", stacklevel=2)
        return {**{f"R@{k}": math.nan for k in ks}, "MRR": math.nan}
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["MRR"] = float(np.mean(1.0 / ranks))
    return out


def retrieval_chance(config_ids: np.ndarray, *, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    r"""Expected :func:`fx_retrieval` scores when the other items are ranked uniformly at random.

    A query with ``P`` positives among ``M`` other items finds its first positive at rank ``r``
    with probability :math:`\binom{M-r}{P-1} / \binom{M}{P}`, so

    .. math::
        P(\rho \le k) = 1 - \binom{M-P}{k} \Big/ \binom{M}{k}, \qquad
        E[1/\rho] = \sum_{r=1}^{M-P+1} \frac{1}{r} \binom{M-r}{P-1} \Big/ \binom{M}{P}.

    Args:
        config_ids: ``(n,)`` configuration ids.
        ks: cut-offs for recall.

    Returns:
        same keys as :func:`fx_retrieval`; NaN when no id occurs twice.

    Raises:
        MixevalError: ``config_ids`` not 1-D, a ``k`` < 1.
    """
    _check_ks(ks)
    ids = np.asarray(config_ids)
    if ids.ndim != 1:
        raise MixevalError(f"config_ids: expected a 1-D array, got shape {ids.shape}")
    _, counts = np.unique(ids, return_counts=True)
    m = ids.shape[0] - 1
    groups = [(int(c) - 1, int(c)) for c in counts if c >= 2]  # (positives per query, queries)
    if not groups:
        return {**{f"R@{k}": math.nan for k in ks}, "MRR": math.nan}
    total = sum(q for _, q in groups)

    def mean(per_query) -> float:
        return sum(q * per_query(p) for p, q in groups) / total

    out = {f"R@{k}": mean(lambda p, k=min(k, m): 1.0 - math.comb(m - p, k) / math.comb(m, k)) for k in ks}
    out["MRR"] = mean(lambda p: sum(math.comb(m - r, p - 1) / r for r in range(1, m - p + 2)) / math.comb(m, p))
    return out
