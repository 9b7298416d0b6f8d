"""Violin plots: tick labels that fit with 5 conditions, instrument panels in drums/bass/other/vocals order."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixeval.pipelines.listening import analyze_listening, violin_panels
from mixeval.plots.violin import tick_label_overlaps, violin_figure

CONDS = ["mee", "fxenc", "gt", "anchor", "input"]


def _ratings(n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"condition": np.repeat(CONDS, n), "rating": rng.uniform(size=n * len(CONDS))})


@pytest.mark.parametrize("labels, slanted", [
    ({"mee": "Proposed system", "fxenc": "Baseline one", "gt": "Ground truth", "anchor": "Low anchor", "input": "Input track"}, False),
    ({"mee": "MixFXcloner (MEE)", "fxenc": "MixFXcloner (FXencoder)", "gt": "Ground truth",
      "anchor": "Anchor (3.5 kHz low-pass)", "input": "Input track"}, True),  # words wider than a slot
])
def test_five_condition_tick_labels_do_not_overlap(labels, slanted):
    r = _ratings()
    fig = violin_figure(r, [("Single stem", np.ones(len(r), bool)), ("Multitrack", np.ones(len(r), bool))], CONDS, labels=labels)
    for ax in fig.axes:
        ticks = ax.get_xticklabels()
        assert [t.get_text().replace("\n", " ") for t in ticks] == [labels[c] for c in CONDS]
        assert tick_label_overlaps(fig, ax) == 0
        assert (ticks[0].get_rotation() != 0) == slanted
    # the same labels upright on one line (the old drawing with exactly 5 conditions) do collide
    ax = fig.axes[0]
    ax.set_xticklabels([labels[c] for c in CONDS], rotation=0)
    assert tick_label_overlaps(fig, ax) > 0


def test_instrument_panels_follow_drums_bass_other_vocals(tmp_path):
    pages = [("q01", "vocals"), ("q02", "other"), ("q03", "drums"), ("q04", "bass"), ("q05", "mixture")]
    man, rows = [], []
    for page, stem in pages:
        qtype = "multitrack" if stem == "mixture" else "single_stem"
        for k, c in enumerate(("a", "b")):
            man.append(dict(element_id=f"{page}-{c}", page_id=page, question_type=qtype, stem=stem, condition=c))
            rows += [dict(participant=f"p{i}", page=page, element=f"{page}-{c}", rating=0.2 + 0.5 * k + 0.02 * i) for i in range(4)]
    pd.DataFrame(man).to_csv(tmp_path / "manifest.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    res = analyze_listening(tmp_path / "long.csv", manifest=tmp_path / "manifest.csv", out_dir=tmp_path / "rep")
    panels = violin_panels(res.analysis)
    assert [t for t, _ in panels["violin_stems"]] == ["drums", "bass", "other", "vocals"]
    assert [t for t, _ in panels["violin"]] == ["Single stem", "Multitrack"]
    r = res.analysis.ratings
    for title, mask in panels["violin_stems"]:
        assert set(r.loc[mask, "stem"]) == {title} and mask.sum() == 8
    assert [g for g in res.analysis.groups if ":" in g] == [f"single_stem:{s}" for s in ("drums", "bass", "other", "vocals")]
    assert (tmp_path / "rep" / "violin_stems.png").is_file()
