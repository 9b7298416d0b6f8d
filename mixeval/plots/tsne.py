"""Fig. 2 of Koo et al.: 2-D maps (t-SNE, or PCA) of FX embeddings, one row per representation.

Columns are the item groups (full FX: points coloured by FX configuration, each colour holding the
same segments; single FX: coloured by effect, or by configuration of one effect). Every embedding
is z-scored per dimension first (constant dimensions become 0), so representations with very
different scales (hand-crafted features) are comparable. Figures are drawn on a standalone
:class:`~matplotlib.figure.Figure` and saved atomically (PNG and PDF).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mixeval.errors import MixevalError
from mixeval.plots.violin import save_figure

__all__ = ["Panel", "embed_2d", "save_figure", "scatter_grid"]

METHODS = ("tsne", "pca")


@dataclass
class Panel:
    """One scatter: ``codes`` ``(n, dim)`` and a colour group per point.

    Attributes:
        codes: embeddings.
        groups: ``(n,)`` group labels (ints or strings); one colour each.
        legend: show the group names (effects) rather than anonymous colours (configurations).
    """

    codes: np.ndarray
    groups: np.ndarray
    legend: bool = False


def _standardize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def embed_2d(codes: np.ndarray, *, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """Project ``(n, dim)`` embeddings to ``(n, 2)``.

    t-SNE (scikit-learn, PCA initialisation, ``learning_rate="auto"``) with the perplexity capped at
    ``(n − 1) / 3`` for small sets; PCA (the first two components). Inputs are z-scored per
    dimension; a set with no variance maps to zeros.

    Raises:
        MixevalError: unknown method, non-finite codes or fewer than 3 points.
    """
    if method not in METHODS:
        raise MixevalError(f"2-D map: method must be one of {', '.join(METHODS)}, got {method!r}")
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise MixevalError(f"2-D map: expected codes (n ≥ 3, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise MixevalError("2-D map: codes contain NaN or inf")
    x = _standardize(x)
    if not np.any(x):
        return np.zeros((x.shape[0], 2))
    if x.shape[1] == 1:
        x = np.concatenate([x, np.zeros_like(x)], axis=1)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    perp = float(min(perplexity, max(1.0, (x.shape[0] - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed).fit_transform(x)


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    if n <= 20:
        return [cmap(i) for i in range(n)]
    return [colormaps["hsv"](i / n) for i in range(n)]


def scatter_grid(
    rows: Sequence[tuple[str, Sequence[Panel]]],
    columns: Sequence[str],
    *,
    method: str = "tsne",
    seed: int = 0,
    panel_size: float = 2.8,
    point_size: float = 9.0,
) -> Figure:
    """A grid of 2-D maps: one row per representation, one column per item group.

    Args:
        rows: ``(row label, panels)``; each row has one :class:`Panel` per column.
        columns: column titles.
        method: ``"tsne"`` or ``"pca"`` (:func:`embed_2d`).
        seed: t-SNE seed.
        panel_size: inches per panel.
        point_size: marker area.

    Raises:
        MixevalError: empty grid or a row with the wrong number of panels.
    """
    if not rows or not columns:
        raise MixevalError("2-D map grid: nothing to draw")
    for name, panels in rows:
        if len(panels) != len(columns):
            raise MixevalError(f"2-D map grid: row {name!r} has {len(panels)} panels for {len(columns)} columns")
    fig = Figure(figsize=(panel_size * len(columns) + 1.2, panel_size * len(rows) + 0.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for j, title in enumerate(columns):
        for i, (name, panels) in enumerate(rows):
            ax, panel = axes[i, j], panels[j]
            xy = embed_2d(panel.codes, method=method, seed=seed)
            groups = np.asarray(panel.groups)
            names = list(dict.fromkeys(groups.tolist()))
            colors = _palette(len(names))
            for g, color in zip(names, colors):
                m = groups == g
                ax.scatter(xy[m, 0], xy[m, 1], s=point_size, color=color, edgecolors="none", alpha=0.85)
            ax.set_xticks([])
            ax.set_yticks([])
            k = j * len(rows) + i
            ax.set_title(f"({letters[k % 26]}) {name}" if i else f"{title}\n({letters[k % 26]}) {name}", fontsize=9)
            if panel.legend and i == len(rows) - 1:
                handles = [Line2D([], [], marker="o", linestyle="", color=c, label=str(g)) for g, c in zip(names, colors)]
                ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=min(3, len(names)),
                          fontsize=7, frameon=False)
    fig.suptitle(f"{'t-SNE' if method == 'tsne' else 'PCA'} of FX embeddings", fontsize=11)
    return fig
