"""Training curves of FXencoder and MixFXcloner runs, read from each run's ``metrics.csv``.

Both trainers log rows ``step, kind, name, value`` (``kind`` = ``train`` or ``valid``).
:func:`training_figure` draws one panel per run: the training loss (light, with a running mean over
``smooth`` logged points) and the validation loss (markers); for encoder runs a second panel shows the
per-effect validation losses ``loss_<fx>`` (single-effect batches) against the chance level of the
NT-Xent batch when the run logged it, so a reader sees which effects the encoder learned.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mixeval.errors import MixevalError
from mixeval.plots.violin import save_figure

__all__ = ["read_metric_series", "training_figure", "plot_training"]

Series = dict[tuple[str, str], list[tuple[int, float]]]


def read_metric_series(metrics_csv: str | os.PathLike, keep: Callable[[str, str], bool] = lambda kind, name: True) -> Series:
    """``(kind, name) → [(step, value), ...]`` (sorted by step; a repeated step keeps the last row).

    Args:
        metrics_csv: the CSV or the run folder holding ``metrics.csv``.
        keep: ``(kind, name) → bool`` filter.

    Raises:
        MixevalError: missing file, wrong columns or a malformed row.
    """
    path = Path(metrics_csv)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise MixevalError(f"{path}: no such metrics file")
    series: dict[tuple[str, str], dict[int, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"step", "kind", "name", "value"}
        if not need <= set(reader.fieldnames or ()):
            raise MixevalError(f"{path}: expected columns {sorted(need)}, got {reader.fieldnames}")
        for row in reader:
            if not keep(row["kind"], row["name"]):
                continue
            try:
                series.setdefault((row["kind"], row["name"]), {})[int(row["step"])] = float(row["value"])
            except ValueError:
                raise MixevalError(f"{path}: bad row {row}") from None
    return {k: sorted(v.items()) for k, v in series.items()}


def training_figure(runs: Sequence[tuple[str, Series]], *, smooth: int = 10, chance: float | None = None) -> Figure:
    """One row per run: loss curves; encoder runs (with ``loss_<fx>`` rows) get a per-effect panel.

    Args:
        runs: ``(title, series)`` with series from :func:`read_metric_series`.
        smooth: running-mean window of the training loss, in logged points.
        chance: draw this NT-Xent chance level on encoder panels (e.g. ``ln(2N − 1)``).

    Raises:
        MixevalError: no run has a loss to draw.
    """
    runs = [(t, s) for t, s in runs if ("train", "loss") in s or ("valid", "loss") in s]
    if not runs:
        raise MixevalError("training plot: no run has loss rows")
    fig = Figure(figsize=(10.0, 2.6 * len(runs)), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), 2, squeeze=False)
    for (title, s), (left, right) in zip(runs, axes):
        if ("train", "loss") in s:
            steps, values = map(np.asarray, zip(*s[("train", "loss")]))
            left.plot(steps, values, color="C0", alpha=0.3, lw=0.8, label="train")
            kernel = np.ones(min(smooth, values.size)) / min(smooth, values.size)
            left.plot(steps[kernel.size - 1:], np.convolve(values, kernel, mode="valid"), color="C0", lw=1.5,
                      label=f"train (mean of {kernel.size})")
        if ("valid", "loss") in s:
            steps, values = zip(*s[("valid", "loss")])
            left.plot(steps, values, "o-", color="C3", ms=3, label="validation")
        left.set_title(title, fontsize="medium")
        left.set_xlabel("step")
        left.set_ylabel("loss")
        left.grid(alpha=0.3)
        left.legend(fontsize="x-small")
        per_fx = sorted(name for kind, name in s if kind == "valid" and name.startswith("loss_"))
        if not per_fx:
            right.set_visible(False)
            continue
        for name in per_fx:
            steps, values = zip(*s[("valid", name)])
            right.plot(steps, values, "o-", ms=3, label=name[len("loss_"):])
        if chance is not None:
            right.axhline(chance, color="k", ls="--", lw=0.8, label="chance")
        right.set_title(f"{title}: validation loss with one effect", fontsize="medium")
        right.set_xlabel("step")
        right.set_ylabel("NT-Xent")
        right.grid(alpha=0.3)
        right.legend(fontsize="x-small", ncol=2)
    return fig


def plot_training(runs: Sequence[tuple[str, str | os.PathLike]], out_png: str | os.PathLike, *, chance: float | None = None,
                  dpi: int = 120) -> Path:
    """Read each ``(title, run folder or metrics.csv)`` and write the figure to ``out_png`` (atomically)."""
    fig = training_figure([(t, read_metric_series(p)) for t, p in runs], chance=chance)
    return save_figure(fig, Path(out_png).with_suffix(".png"), formats=("png",), dpi=dpi)[0]
