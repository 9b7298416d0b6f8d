"""Write a pandas DataFrame as CSV + Markdown + LaTeX, atomically, with optional bold-best cells.

Used for every table of mixeval (Table 1, Table 2, listening-test tables). The CSV keeps full
precision and no markup; Markdown and LaTeX show formatted numbers, with the best value of chosen
columns in bold (optionally the best within each group of rows).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"model": ["a", "b"], "score": [0.5, 0.7]})
    >>> print(to_markdown(df, bold_best={"score": "max"}))
    | model | score |
    |---|---:|
    | a | 0.500 |
    | b | **0.700** |
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from mixeval.errors import MixevalError
from mixfx.io.atomic import atomic_write

__all__ = ["best_mask", "format_cells", "to_latex", "to_markdown", "write_table"]

FloatFormat = Union[str, Callable[[float], str], Mapping[str, Union[str, Callable[[float], str]]]]
FORMATS = ("csv", "md", "tex")

# characters that need escaping in LaTeX text, and a few symbols used in model names
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "Φ": r"$\Phi$", "Ψ": r"$\Psi$", "∅": r"$\emptyset$", "Δ": r"$\Delta$", "λ": r"$\lambda$",
    "±": r"$\pm$", "−": "-", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$",
}


def _fmt_one(value, fmt: str | Callable[[float], str]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return fmt(float(value)) if callable(fmt) else fmt.format(float(value))
    return str(value)


def format_cells(df: pd.DataFrame, float_format: FloatFormat = "{:.3f}") -> pd.DataFrame:
    """Return a DataFrame of strings: numbers formatted, NaN as "–", booleans as yes/no."""
    out = {}
    for col in df.columns:
        if isinstance(float_format, Mapping):
            fmt = float_format.get(col, "{:.3f}")
        else:
            fmt = float_format
        out[col] = [_fmt_one(v, fmt) for v in df[col].tolist()]
    return pd.DataFrame(out, index=df.index, columns=df.columns)


def best_mask(
    df: pd.DataFrame, bold_best: Mapping[str, str] | None, *, best_within: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Boolean mask of the best cells: per column ``"max"`` or ``"min"``, ties all marked, NaN never.

    Args:
        df: the table.
        bold_best: column → ``"max"`` or ``"min"``.
        best_within: column(s) whose values define groups of rows; the best is taken per group.

    Raises:
        MixevalError: an unknown column or direction.
    """
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    if not bold_best:
        return mask
    groups = [df.index] if best_within is None else [g.index for _, g in df.groupby(best_within, sort=False)]
    for col, direction in bold_best.items():
        if col not in df.columns:
            raise MixevalError(f"bold_best: unknown column {col!r}; columns are {list(df.columns)}")
        if direction not in ("max", "min"):
            raise MixevalError(f"bold_best[{col!r}]: expected 'max' or 'min', got {direction!r}")
        values = pd.to_numeric(df[col], errors="coerce")
        for idx in groups:
            v = values.loc[idx]
            if v.notna().any():
                best = v.max() if direction == "max" else v.min()
                mask.loc[idx, col] = np.isclose(v.to_numpy(dtype=float), best, rtol=0, atol=1e-12)
    return mask


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]


def _prepare(df, float_format, bold_best, best_within, index):
    if index:
        df = df.reset_index()
    cells = format_cells(df, float_format)
    mask = best_mask(df, bold_best, best_within=best_within)
    return df, cells, mask


def to_markdown(
    df: pd.DataFrame,
    *,
    float_format: FloatFormat = "{:.3f}",
    bold_best: Mapping[str, str] | None = None,
    best_within: str | Sequence[str] | None = None,
    index: bool = False,
) -> str:
    """Render ``df`` as a GitHub-flavoured Markdown table (numeric columns right-aligned)."""
    df, cells, mask = _prepare(df, float_format, bold_best, best_within, index)

    def esc(s: str) -> str:
        return s.replace("|", r"\|").replace("\n", " ")

    header = "| " + " | ".join(esc(str(c)) for c in df.columns) + " |"
    align = "|" + "|".join("---:" if num else "---" for num in _numeric_columns(df)) + "|"
    lines = [header, align]
    for i in range(len(df)):
        row = []
        for j, _ in enumerate(df.columns):
            text = esc(cells.iat[i, j])
            row.append(f"**{text}**" if mask.iat[i, j] else text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters and map a few Greek/math symbols to math mode."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(
    df: pd.DataFrame,
    *,
    float_format: FloatFormat = "{:.3f}",
    bold_best: Mapping[str, str] | None = None,
    best_within: str | Sequence[str] | None = None,
    index: bool = False,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """Render ``df`` as a booktabs ``tabular`` (inside a ``table`` float when a caption or label is given)."""
    df, cells, mask = _prepare(df, float_format, bold_best, best_within, index)
    spec = "".join("r" if num else "l" for num in _numeric_columns(df))
    body = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(latex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    for i in range(len(df)):
        row = []
        for j, _ in enumerate(df.columns):
            text = latex_escape(cells.iat[i, j])
            row.append(rf"\textbf{{{text}}}" if mask.iat[i, j] else text)
        body.append(" & ".join(row) + r" \\")
    body += [r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(body) + "\n"
    out = [r"\begin{table}[t]", r"\centering"]
    if caption is not None:
        out.append(rf"\caption{{{latex_escape(caption)}}}")
    if label is not None:
        out.append(rf"\label{{{label}}}")
    return "\n".join(out + body + [r"\end{table}"]) + "\n"


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    formats: Sequence[str] = FORMATS,
    float_format: FloatFormat = "{:.3f}",
    bold_best: Mapping[str, str] | None = None,
    best_within: str | Sequence[str] | None = None,
    index: bool = False,
    caption: str | None = None,
    label: str | None = None,
) -> dict[str, Path]:
    """Write ``df`` next to ``path`` as ``.csv``, ``.md`` and/or ``.tex``, each file atomically.

    Args:
        df: the table.
        path: output path without suffix (a suffix, if given, is replaced), e.g. ``reports/table2``.
        formats: any of ``"csv"``, ``"md"``, ``"tex"``.
        float_format: a format string, a callable, or a per-column mapping of either (Markdown/LaTeX).
        bold_best: column → ``"max"``/``"min"``: bold the best value(s) of the column.
        best_within: group rows by these column(s) before picking the best.
        index: include the DataFrame index as leading column(s).
        caption, label: LaTeX caption and label.

    Returns:
        Mapping format → written path.

    Raises:
        MixevalError: unknown format, unknown bold column, or an empty column list.
    """
    path = Path(path)
    if path.suffix in (".csv", ".md", ".tex"):
        path = path.with_suffix("")
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise MixevalError(f"{path}: unknown table format(s) {bad}; allowed: {list(FORMATS)}")
    if len(df.columns) == 0:
        raise MixevalError(f"{path}: refusing to write a table without columns")
    written: dict[str, Path] = {}
    for fmt in formats:
        target = path.with_name(path.name + "." + fmt)
        if fmt == "csv":
            text = df.to_csv(index=index, lineterminator="\n")
        elif fmt == "md":
            text = to_markdown(df, float_format=float_format, bold_best=bold_best, best_within=best_within, index=index)
        else:
            text = to_latex(
                df, float_format=float_format, bold_best=bold_best, best_within=best_within,
                index=index, caption=caption, label=label,
            )
        with atomic_write(target, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        written[fmt] = target
    return written
