"""The probability schedule of an encoder run: ``p_<fx>`` against the training step.

``mixfx train-encoder --variant ps`` logs the per-effect application probabilities after every
validation as rows ``step, valid, p_<fx>, value`` of the run's ``metrics.csv`` (see
:mod:`mixfx.train.schedule`). :func:`schedule_figure` draws them as step lines (a probability holds
until the next validation); :func:`plot_schedule` reads the CSV and writes a PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mixeval.errors import MixevalError
from mixeval.plots.training import read_metric_series
from mixeval.plots.violin import save_figure

__all__ = ["read_schedule", "schedule_figure", "plot_schedule"]


def read_schedule(metrics_csv: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Read the ``p_<fx>`` validation rows of a run's ``metrics.csv``.

    Args:
        metrics_csv: the CSV itself or the run folder holding it.

    Returns:
        effect name → ``[(step, probability), ...]`` sorted by step (later rows win on a repeated step).

    Raises:
        MixevalError: the file is missing, lacks the ``step,kind,name,value`` columns, or has no ``p_<fx>`` rows.
    """
    rows = read_metric_series(metrics_csv, lambda kind, name: kind == "valid" and name.startswith("p_"))
    if not rows:
        path = Path(metrics_csv)
        raise MixevalError(f"{path / 'metrics.csv' if path.is_dir() else path}: no probability-schedule rows (p_<fx>); "
                           "was the run trained with --variant ps?")
    return {name[2:]: points for (_, name), points in rows.items()}


def schedule_figure(schedule: dict[str, list[tuple[int, float]]], *, title: str | None = None) -> Figure:
    """Draw one step line per effect (x: training step, y: probability in [0, 1]).

    Args:
        schedule: as returned by :func:`read_schedule`.
        title: optional axes title.

    Raises:
        MixevalError: nothing to draw.
    """
    if not schedule or not any(schedule.values()):
        raise MixevalError("schedule plot: nothing to draw (no p_<fx> values)")
    fig = Figure(figsize=(6.0, 3.4), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for fx, points in schedule.items():
        if not points:
            continue
        steps, values = zip(*points)
        ax.step(steps, values, where="post", marker="o", markersize=3, label=fx)
    ax.set_xlabel("training step")
    ax.set_ylabel("application probability")
    ax.set_ylim(0.0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=3, loc="lower right")
    if title:
        ax.set_title(title)
    return fig


def plot_schedule(metrics_csv: str | os.PathLike, out_png: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Read ``metrics_csv`` (or a run folder) and write the schedule figure to ``out_png`` (atomically).

    Returns:
        the PNG path.

    Raises:
        MixevalError: see :func:`read_schedule`.
    """
    src = Path(metrics_csv)
    run_name = src.parent.name if src.is_file() else src.name
    fig = schedule_figure(read_schedule(src), title=f"probability schedule: {run_name}")
    return save_figure(fig, Path(out_png).with_suffix(".png"), formats=("png",), dpi=dpi)[0]
