"""Violin plots of listening-test ratings, one panel per question type (paper Fig. 3).

Conditions are on the x-axis, ratings (0–1) on the y-axis; each violin shows the kernel density
with its median, and every individual rating is overlaid as a jittered dot. Figures are drawn on
a standalone :class:`matplotlib.figure.Figure` (no pyplot state) and saved atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mixeval.errors import MixevalError
from mixfx.io.atomic import atomic_path

__all__ = ["violin_figure", "save_figure"]

_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")


def violin_figure(
    ratings: pd.DataFrame,
    panels: Sequence[tuple[str, pd.Series | np.ndarray]],
    conditions: Sequence[str],
    *,
    labels: dict[str, str] | None = None,
    ylabel: str = "Similarity rating",
    rng: np.random.Generator | None = None,
    panel_width: float = 4.2,
) -> Figure:
    """Draw one violin panel per ``(title, row mask)``.

    Args:
        ratings: long table with ``condition`` and ``rating`` (0–1) columns.
        panels: panel title and boolean mask selecting its rows.
        conditions: x-axis order; conditions without ratings in a panel are left empty.
        labels: display labels per condition.
        rng: jitter of the overlaid dots (default: seeded with 0, so figures are reproducible).

    Raises:
        MixevalError: no panels or missing columns.
    """
    if not panels:
        raise MixevalError("violin plot: nothing to draw (no panels)")
    for col in ("condition", "rating"):
        if col not in ratings.columns:
            raise MixevalError(f"violin plot: ratings lack column {col!r}")
    labels = labels or {}
    rng = rng if rng is not None else np.random.default_rng(0)
    fig = Figure(figsize=(panel_width * len(panels), 3.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    positions = np.arange(1, len(conditions) + 1)
    for ax, (title, mask) in zip(axes, panels):
        sub = ratings[np.asarray(mask, dtype=bool)]
        for pos, cond, color in zip(positions, conditions, _COLORS * (len(conditions) // len(_COLORS) + 1)):
            values = sub.loc[sub["condition"] == cond, "rating"].to_numpy(dtype=float)
            if values.size == 0:
                continue
            if values.size >= 2 and np.ptp(values) > 0:
                parts = ax.violinplot([values], positions=[pos], widths=0.8, showextrema=False, showmedians=False)
                for body in parts["bodies"]:
                    body.set_facecolor(color)
                    body.set_edgecolor("black")
                    body.set_linewidth(0.6)
                    body.set_alpha(0.45)
            jitter = rng.uniform(-0.12, 0.12, size=values.size)
            ax.scatter(pos + jitter, values, s=7, color=color, edgecolors="black", linewidths=0.3, alpha=0.8, zorder=3)
            ax.hlines(np.median(values), pos - 0.28, pos + 0.28, colors="black", linewidth=1.6, zorder=4)
        ax.set_title(title)
        ax.set_xticks(positions)
        ax.set_xticklabels([labels.get(c, c) for c in conditions], rotation=20 if len(conditions) > 5 else 0)
        ax.set_xlim(0.4, len(conditions) + 0.6)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, formats: Sequence[str] = ("png", "pdf"), dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats`` (atomically); return the paths."""
    path = Path(path)
    if path.suffix in (".png", ".pdf", ".svg"):
        path = path.with_suffix("")
    out = []
    for fmt in formats:
        target = path.with_name(f"{path.name}.{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
        out.append(target)
    return out
