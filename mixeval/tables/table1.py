"""Table 1 of Koo et al.: DCIMIG and DCI RF Expl of each representation in the four cases.

Input is the long table of per-seed scores written by :mod:`mixeval.pipelines.disentangle`
(``label, type, case, seed, metric, value``; each value already averaged over the case's stems or
effects). Output: one row per representation (encoders first, then the baselines and references)
with mean ± std over seeds for each case × metric, as CSV (numbers: ``*_mean``/``*_std`` columns),
Markdown and LaTeX (``mean ± std`` cells, the best mean of each column in bold).

The bold marks the best *competitor*: the ``ideal`` reference row (codes = factors) is excluded,
and so is an analytic ``chance`` row (``mixeval retrieval``); the pure-noise chance row is not (if noise is best in a column, the column does not separate
the encoders from chance, and the table should say so).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mixeval.errors import MixevalError
from mixeval.tables.render import best_mask, latex_escape, write_table
from mixfx.io.atomic import atomic_write

__all__ = ["CASE_TITLES", "METRIC_TITLES", "TYPE_TITLES", "table1_frame", "write_table1"]

CASE_TITLES = {
    "multitrack_full": "Multitrack, full FX",
    "stem_full": "Single stem, full FX",
    "multitrack_single": "Multitrack, single FX",
    "stem_single": "Single stem, single FX",
}
METRIC_TITLES = {"dcimig": "DCIMIG", "dci_informativeness": "DCI RF Expl"}
TYPE_TITLES = {
    "encoder": "encoder",
    "random": "baseline: random init",
    "handcrafted": "baseline: hand-crafted",
    "noise": "chance: pure noise",
    "ideal": "reference: codes = factors",
    "chance": "chance: analytic",
}
_NOT_BOLD = ("ideal", "chance")


def table1_frame(
    scores: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    metrics: Sequence[str] = tuple(METRIC_TITLES),
    cases: Sequence[str] = tuple(CASE_TITLES),
) -> pd.DataFrame:
    """Aggregate per-seed scores into Table 1's numbers.

    Args:
        scores: long table with columns ``label, type, case, seed, metric, value`` (and optionally
            ``dim``).
        order: row order by label (default: first appearance).
        metrics: metric names (columns ``value`` of rows with that ``metric``).
        cases: case names.

    Returns:
        One row per label: ``label, type, dim, seeds`` then ``<case>.<metric>.mean`` and ``.std``
        (population std over seeds, ``ddof=0``; 0 for a single seed; NaN where missing).

    Raises:
        MixevalError: missing columns or an unknown label in ``order``.
    """
    need = {"label", "type", "case", "seed", "metric", "value"}
    missing = sorted(need - set(scores.columns))
    if missing:
        raise MixevalError(f"table 1: score table lacks columns {missing}")
    labels = list(dict.fromkeys(scores["label"])) if order is None else list(order)
    unknown = [lab for lab in labels if lab not in set(scores["label"])]
    if unknown:
        raise MixevalError(f"table 1: no scores for {unknown[0]!r}")
    rows = []
    for lab in labels:
        sub = scores[scores["label"] == lab]
        row = {"label": lab, "type": sub["type"].iloc[0],
               "dim": int(sub["dim"].iloc[0]) if "dim" in sub else np.nan, "seeds": int(sub["seed"].nunique())}
        for case in cases:
            for metric in metrics:
                v = sub.loc[(sub["case"] == case) & (sub["metric"] == metric), "value"].to_numpy(dtype=float)
                v = v[np.isfinite(v)]
                row[f"{case}.{metric}.mean"] = float(v.mean()) if v.size else np.nan
                row[f"{case}.{metric}.std"] = float(v.std(ddof=0)) if v.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _cells(df: pd.DataFrame, cases, metrics, digits: int) -> tuple[list[list[str]], np.ndarray]:
    means = pd.DataFrame({f"{c}.{m}": df[f"{c}.{m}.mean"] for c in cases for m in metrics})
    competitor = ~df["type"].isin(_NOT_BOLD).to_numpy()
    mask = np.zeros(means.shape, dtype=bool)
    if competitor.any():
        sub = means[competitor].reset_index(drop=True)
        mask[competitor] = best_mask(sub, {col: "max" for col in sub.columns}).to_numpy()
    cells = []
    for i in range(len(df)):
        row = []
        for c in cases:
            for m in metrics:
                mu, sd = df[f"{c}.{m}.mean"].iloc[i], df[f"{c}.{m}.std"].iloc[i]
                row.append("–" if not np.isfinite(mu) else f"{mu:.{digits}f} ± {sd:.{digits}f}")
        cells.append(row)
    return cells, mask


def _markdown(df, cases, metrics, note: str, digits: int) -> str:
    cells, mask = _cells(df, cases, metrics, digits)
    head = ["Model", "Type"] + [f"{CASE_TITLES.get(c, c)}: {METRIC_TITLES.get(m, m)}" for c in cases for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for i, (_, r) in enumerate(df.iterrows()):
        body = [f"**{t}**" if mask[i, j] else t for j, t in enumerate(cells[i])]
        lines.append("| " + " | ".join([str(r["label"]), TYPE_TITLES.get(r["type"], r["type"])] + body).replace("\n", " ") + " |")
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def _latex(df, cases, metrics, caption: str, label: str, digits: int) -> str:
    cells, mask = _cells(df, cases, metrics, digits)
    nm = len(metrics)
    spec = "ll" + "r" * (len(cases) * nm)
    top = " & ".join(["", ""] + [rf"\multicolumn{{{nm}}}{{c}}{{{latex_escape(CASE_TITLES.get(c, c))}}}" for c in cases]) + r" \\"
    rules = " ".join(rf"\cmidrule(lr){{{3 + k * nm}-{2 + (k + 1) * nm}}}" for k in range(len(cases)))
    sub = " & ".join(["Model", "Type"] + [latex_escape(METRIC_TITLES.get(m, m)) for _ in cases for m in metrics]) + r" \\"
    out = [r"\begin{table*}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}",
           r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule", top, rules, sub, r"\midrule"]
    for i, (_, r) in enumerate(df.iterrows()):
        body = [rf"\textbf{{{latex_escape(t)}}}" if mask[i, j] else latex_escape(t) for j, t in enumerate(cells[i])]
        out.append(" & ".join([latex_escape(r["label"]), latex_escape(TYPE_TITLES.get(r["type"], r["type"]))] + body) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
    return "\n".join(out) + "\n"


def write_table1(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    note: str = "",
    metrics: Sequence[str] = tuple(METRIC_TITLES),
    cases: Sequence[str] = tuple(CASE_TITLES),
    digits: int = 3,
    label: str = "tab:disentanglement",
) -> dict[str, Path]:
    """Write :func:`table1_frame`'s table as ``<path>.csv``, ``.md`` and ``.tex`` (each atomically).

    Args:
        table: output of :func:`table1_frame`.
        path: output path without suffix.
        note: protocol and reading notes; printed under the Markdown table and used as the LaTeX caption.
        metrics, cases: columns to show (the CSV keeps every column of ``table``).
        digits: decimals in the Markdown and LaTeX cells.
        label: LaTeX label.

    Returns:
        Format → written path.
    """
    path = Path(path)
    if path.suffix in (".csv", ".md", ".tex"):
        path = path.with_suffix("")
    for c in cases:
        for m in metrics:
            if f"{c}.{m}.mean" not in table.columns:
                raise MixevalError(f"table 1: no column for case {c!r}, metric {m!r}")
    written = write_table(table, path, formats=("csv",), float_format="{:.6f}")
    texts = {"md": _markdown(table, cases, metrics, note, digits),
             "tex": _latex(table, cases, metrics, note or "Disentanglement of FX encoders", label, digits)}
    for fmt, text in texts.items():
        target = path.with_name(f"{path.name}.{fmt}")
        with atomic_write(target, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        written[fmt] = target
    return written
