"""Tests of mixeval.tables.render: CSV/Markdown/LaTeX output and bold-best cells."""

import numpy as np
import pandas as pd
import pytest

from mixeval.errors import MixevalError
from mixeval.tables.render import best_mask, latex_escape, to_latex, to_markdown, write_table


def _table():
    return pd.DataFrame(
        {
            "group": ["multi", "multi", "stem", "stem"],
            "model": ["Ψ w/ Φp.s.", "gt_mix", "a", "b"],
            "mse": [0.25, 0.30, np.nan, 0.10],
            "score": [0.9, 0.9, 0.5, 0.7],
            "n": [3, 4, 5, 6],
        }
    )


def test_best_mask_per_column_and_within_groups():
    df = _table()
    mask = best_mask(df, {"mse": "min", "score": "max"})
    assert mask["mse"].tolist() == [False, False, False, True]
    assert mask["score"].tolist() == [True, True, False, False]  # ties all bold
    grouped = best_mask(df, {"mse": "min", "score": "max"}, best_within="group")
    assert grouped["mse"].tolist() == [True, False, False, True]  # NaN never best
    assert grouped["score"].tolist() == [True, True, False, True]
    with pytest.raises(MixevalError, match="unknown column"):
        best_mask(df, {"nope": "max"})
    with pytest.raises(MixevalError, match="'max' or 'min'"):
        best_mask(df, {"mse": "lowest"})


def test_markdown_format_bold_and_nan():
    md = to_markdown(_table(), bold_best={"score": "max"}, best_within="group", float_format={"mse": "{:.2f}"})
    lines = md.splitlines()
    assert lines[0] == "| group | model | mse | score | n |"
    assert lines[1] == "|---|---|---:|---:|---:|"
    assert lines[2] == "| multi | Ψ w/ Φp.s. | 0.25 | **0.900** | 3 |"
    assert lines[4] == "| stem | a | – | 0.500 | 5 |"
    assert lines[5].endswith("| **0.700** | 6 |")


def test_latex_escapes_and_booktabs():
    assert latex_escape("a_b & 50%") == r"a\_b \& 50\%"
    assert latex_escape("Φp.s.") == r"$\Phi$p.s."
    tex = to_latex(_table(), bold_best={"mse": "min"}, caption="Table 2", label="tab:t2")
    assert r"\begin{tabular}{llrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\caption{Table 2}" in tex and r"\label{tab:t2}" in tex
    assert r"gt\_mix" in tex
    assert r"\textbf{0.100}" in tex
    assert tex.count(r"\\") == 5  # header + 4 rows


def test_write_table_writes_all_formats_with_full_precision_csv(tmp_path):
    df = _table()
    paths = write_table(df, tmp_path / "sub" / "table2.csv", bold_best={"score": "max"})
    assert sorted(paths) == ["csv", "md", "tex"]
    assert paths["csv"] == tmp_path / "sub" / "table2.csv"
    back = pd.read_csv(paths["csv"])
    assert back["mse"].tolist()[:2] == [0.25, 0.30] and back["model"].tolist() == df["model"].tolist()
    assert "**0.900**" in paths["md"].read_text(encoding="utf-8")
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(MixevalError, match="unknown table format"):
        write_table(df, tmp_path / "x", formats=("xlsx",))
