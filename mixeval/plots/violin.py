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

__all__ = ["save_figure", "tick_label_overlaps", "violin_figure"]

TICK_FONTSIZE = 9.0
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
        labels: display labels per condition. Tick labels are wrapped at spaces to fit their
            slot; when one word alone is wider, all are slanted by 30° instead.
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
        ax.set_xticklabels([labels.get(c, c) for c in conditions], fontsize=TICK_FONTSIZE)
        ax.set_xlim(0.4, len(conditions) + 0.6)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    _fit_tick_labels(fig, axes)
    return fig


def tick_label_overlaps(fig: Figure, ax) -> int:
    r"""Number of neighbouring x tick labels of ``ax`` that collide once drawn.

    Upright labels collide when their boxes overlap. Labels slanted by the same angle
    :math:`\theta` are parallel strips: neighbours ``dx`` pixels apart are
    :math:`dx \sin\theta` apart across the text, which must exceed the strip's height.
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    ticks = [t for t in ax.get_xticklabels() if t.get_text()]
    angle = np.deg2rad(ticks[0].get_rotation()) if ticks else 0.0
    if angle == 0.0:
        boxes = [t.get_window_extent(renderer) for t in ticks]
        return sum(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:]))
    xs = [ax.transData.transform((x, 0))[0] for x, t in zip(ax.get_xticks(), ax.get_xticklabels()) if t.get_text()]
    heights = [sum(renderer.get_text_width_height_descent(line, t.get_fontproperties(), ismath=False)[1]
                   for line in t.get_text().split("\n")) for t in ticks]
    return sum((b - a) * abs(np.sin(angle)) < max(h1, h2) for a, b, h1, h2 in zip(xs, xs[1:], heights, heights[1:]))


def _fit_tick_labels(fig: Figure, axes) -> None:
    """Make x tick labels fit their slot: wrap at spaces to the slot width, measured with the
    renderer; if a single word is wider than its slot, slant all labels by 30° on one line."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        ticks = ax.get_xticklabels()
        xs = ax.transData.transform([(x, 0) for x in ax.get_xticks()])[:, 0]
        slot = 0.92 * (float(np.min(np.diff(xs))) if len(xs) > 1 else ax.bbox.width)

        def width(text: str, props=ticks[0].get_fontproperties() if ticks else None) -> float:
            return renderer.get_text_width_height_descent(text, props, ismath=False)[0]

        texts = [t.get_text() for t in ticks]
        if any(width(w) > slot for t in texts for w in t.split()):
            for t in ticks:
                t.set_rotation(30)
                t.set_horizontalalignment("right")
                t.set_rotation_mode("anchor")
            continue
        wrapped = []
        for text in texts:
            lines: list[str] = []
            for word in text.split():
                if lines and width(f"{lines[-1]} {word}") <= slot:
                    lines[-1] = f"{lines[-1]} {word}"
                else:
                    lines.append(word)
            wrapped.append("\n".join(lines) or text)
        ax.set_xticklabels(wrapped, fontsize=TICK_FONTSIZE)  # (a Text's set_text would be redrawn from the formatter)


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
