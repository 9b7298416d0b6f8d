"""Table 2 of Koo et al. 2023 (objective style transfer) as CSV, Markdown, LaTeX and a figure.

Input: the long summary of :func:`mixeval.pipelines.table2.run_table2` (one record per row × case ×
column with ``mean``, ``ci_low``, ``ci_high``, ``p_bonferroni``, ``beats_input``). Every cell shows
"multitrack / single stem", as the paper prints it; the best value of each column and case is bold
(the oracle, which is 0 by construction on the y–gt columns, is never bold); a † marks a row that is
significantly better than ``Input`` (Wilcoxon signed-rank, Bonferroni over rows × columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixeval.tables.render import latex_escape

__all__ = ["figure_table2", "paired_summary", "table2_markdown", "table2_tex", "table2_wide"]

_NOT_BOLD = ("oracle",)


def _columns():
    from mixeval.pipelines.table2 import CASES, COLUMNS

    return COLUMNS, CASES


def table2_wide(summary: pd.DataFrame, rows) -> pd.DataFrame:
    """One line per row: ``<column>_<case>`` means and ``..._ci_low`` / ``..._ci_high`` / ``..._p_bonferroni``."""
    columns, cases = _columns()
    out = []
    for row in rows:
        rec = {"method": row}
        sub = summary[summary["row"] == row].set_index(["column", "case"])
        for col in columns:
            for case in cases:
                r = sub.loc[(col, case)]
                rec[f"{col}_{case}"] = r["mean"]
                rec[f"{col}_{case}_ci_low"] = r["ci_low"]
                rec[f"{col}_{case}_ci_high"] = r["ci_high"]
                rec[f"{col}_{case}_p_bonferroni"] = r["p_bonferroni"]
        out.append(rec)
    return pd.DataFrame(out)


def _best(summary: pd.DataFrame) -> dict[tuple[str, str], float]:
    pool = summary[~summary["row"].isin(_NOT_BOLD)]
    return pool.groupby(["column", "case"])["mean"].min().to_dict()


def _cells(summary: pd.DataFrame, rows, bold, fmt="{:.3f}"):
    columns, cases = _columns()
    best = _best(summary)
    idx = summary.set_index(["row", "column", "case"])
    lines = []
    for row in rows:
        cells = []
        for col in columns:
            parts = []
            for case in cases:
                r = idx.loc[(row, col, case)]
                m = r["mean"]
                if not np.isfinite(m):
                    parts.append("–")
                    continue
                text = fmt.format(m) + ("†" if bool(r["beats_input"]) else "")
                b = best.get((col, case))
                if row not in _NOT_BOLD and b is not None and np.isclose(m, b, rtol=0, atol=1e-12):
                    text = bold(text)
                parts.append(text)
            cells.append(" / ".join(parts))
        lines.append((row, cells))
    return lines


def table2_markdown(summary: pd.DataFrame, rows, *, floor: dict | None = None, sdr: dict | None = None,
                    alpha: float = 0.05) -> str:
    """The table (means, "multitrack / single stem"), then the 95 % CIs, the ΔΦ floor and the SDRs."""
    columns, cases = _columns()
    head = "| method | " + " | ".join(columns.values()) + " |\n|---|" + "---:|" * len(columns) + "\n"
    body = "".join(f"| {row} | " + " | ".join(cells) + " |\n" for row, cells in _cells(summary, rows, lambda t: f"**{t}**"))
    text = ("Values: multitrack / single stem, mean over examples; lower is better. **Bold**: best per column and "
            f"case (oracle excluded). †: better than Input, Wilcoxon signed-rank p < {alpha:g} after Bonferroni "
            "over rows × columns × cases.\n\n" + head + body)
    if floor:
        text += (f"\nλ·ΔΦ between gt and ref (the floor a perfect transfer reaches on y–ref): "
                 f"{floor['multitrack']:.3f} / {floor['stem']:.3f} (paper, MUSDB18: 0.214 / 0.119).\n")
    if sdr:
        text += (f"\nSDR between outputs from separated and from clean stems: {sdr['multitrack']:.2f} dB / "
                 f"{sdr['stem']:.2f} dB (paper, MUSDB18: 8.0 / 4.6 dB).\n")
    text += "\n95 % bootstrap confidence intervals of the means:\n\n"
    idx = summary.set_index(["row", "column", "case"])
    text += "| method | case | " + " | ".join(columns.values()) + " |\n|---|---|" + "---|" * len(columns) + "\n"
    for row in rows:
        for case in cases:
            cells = []
            for col in columns:
                r = idx.loc[(row, col, case)]
                cells.append("–" if not np.isfinite(r["mean"]) else f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
            text += f"| {row} | {case} | " + " | ".join(cells) + " |\n"
    return text


def table2_tex(summary: pd.DataFrame, rows) -> str:
    """A booktabs ``tabular`` with the same cells as the Markdown table."""
    columns, _ = _columns()
    lines = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             "Method & " + " & ".join(latex_escape(c) for c in columns.values()) + r" \\", r"\midrule"]
    for row, cells in _cells(summary, rows, lambda t: rf"\textbf{{{t}}}"):
        esc = [c.replace("†", r"$^\dagger$").replace("–", "--") for c in cells]
        lines.append(latex_escape(row) + " & " + " & ".join(esc) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def figure_table2(examples: pd.DataFrame, rows, path) -> None:
    """Per column, a box per row (multitrack and single stem side by side); PNG and PDF at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from mixfx.io.atomic import atomic_path

    columns, _ = _columns()
    cols = [c for c in columns if examples[c].notna().any()]
    ncol = 4
    nrow = int(np.ceil(len(cols) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        sns.boxplot(data=examples, x="row", y=col, hue="case", order=list(rows), ax=ax, fliersize=1.5, linewidth=0.8)
        ax.set_title(columns[col], fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=35, labelsize=8)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        if ax.get_legend() is not None and col != cols[0]:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.suptitle("Table 2 per example (lower is better)")
    fig.tight_layout()
    for suffix in (".png", ".pdf"):
        target = path.with_name(path.name + suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=120)
    plt.close(fig)


def paired_summary(examples: pd.DataFrame, rows: list[str], *, bootstrap: int, alpha: float, seed: int) -> pd.DataFrame:
    """Per row × case × column: mean, 95 % bootstrap CI, Wilcoxon signed-rank p against ``Input`` (paired by
    stem and item), Bonferroni over every tested cell, and ``beats_input`` (lower mean and p < ``alpha``)."""
    from mixeval.metrics.stats import bonferroni, bootstrap_mean_ci, wilcoxon_p
    from mixeval.pipelines.table2 import CASES, COLUMNS, INPUT

    records = []
    for r_i, row in enumerate(rows):
        for c_i, case in enumerate(CASES):
            sub = examples[(examples["row"] == row) & (examples["case"] == case)].sort_values(["stem", "item"])
            base = examples[(examples["row"] == INPUT) & (examples["case"] == case)].sort_values(["stem", "item"])
            for k, col in enumerate(COLUMNS):
                v = sub[col].to_numpy(dtype=float)
                lo, hi = bootstrap_mean_ci(v, resamples=bootstrap,
                                           seed=seed * 7919 + r_i * 131 + c_i * 17 + k)
                p = float("nan")
                if row != INPUT and np.isfinite(v).all() and len(v) == len(base):
                    p = wilcoxon_p(v, base[col].to_numpy(dtype=float))
                records.append({"row": row, "case": case, "column": col, "mean": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
                                "ci_low": lo, "ci_high": hi, "n": int(np.isfinite(v).sum()), "p_wilcoxon": p})
    df = pd.DataFrame(records)
    tested = df["p_wilcoxon"].notna()
    df["p_bonferroni"] = np.nan
    df.loc[tested, "p_bonferroni"] = bonferroni(df.loc[tested, "p_wilcoxon"].to_numpy())
    base = df[df["row"] == INPUT].set_index(["case", "column"])["mean"]
    better = df.apply(lambda r: r["mean"] < base.get((r["case"], r["column"]), np.nan), axis=1)
    df["beats_input"] = tested & (df["p_bonferroni"] < alpha) & better
    return df
