"""The main job end to end at toy size: synthetic data → normalization → 3 encoders → cloner → transfer → Table 1."""

from __future__ import annotations

import pandas as pd
import pytest

from mixeval.pipelines.reproduce import ReproduceConfig, reproduce


@pytest.mark.slow
def test_reproduce_runs_every_stage_and_resumes(tmp_path):
    config = ReproduceConfig(songs=6, seconds=5.0, encoder_steps=2, cloner_steps=2)
    paths = reproduce(tmp_path / "out", config, device="cpu")
    for variant in ("none", "norm", "ps"):
        assert (tmp_path / "out" / "runs" / f"encoder_{variant}" / "checkpoints" / "last.pt").is_file()
    songs = [p for p in paths["transfer"].iterdir() if p.is_dir()]
    assert len(songs) == 1 and (songs[0] / "mixture.wav").is_file()
    table = pd.read_csv(paths["reports"] / "table1.csv")
    labels = " ".join(table.iloc[:, 0].astype(str))
    assert all(lbl in labels for lbl in ("Φ∅", "Φnorm", "Φp.s.")) and "noise" in labels.lower()
    assert (paths["reports"] / "fig2_tsne.png").is_file()
    assert "Table 1" in paths["summary"].read_text()
    for variant in ("none", "norm", "ps"):
        assert (tmp_path / "out" / "runs" / f"cloner_{variant}" / "checkpoints" / "last.pt").is_file()
    t2 = pd.read_csv(paths["table2"] / "table2.csv")
    assert list(t2["method"]) == ["Input", "oracle", "DSP baseline", "Ψ w/ Φ∅", "Ψ w/ Φnorm", "Ψ w/ Φp.s."]
    text = paths["summary"].read_text()
    assert "## Table 2" in text and "## FX retrieval" in text and "## Verdicts" in text and "synthetic" in text
    verdicts = pd.read_csv(tmp_path / "out" / "verdicts.csv")
    assert len(verdicts) == 8 and set(verdicts["status"]) <= {"holds", "does not hold", "undecided"}
    # quick evaluation has no CV folds: held-out explicitness is undefined, so claim 1 cannot pass
    assert not (verdicts["status"].iloc[:3] == "holds").any()
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page and "<audio" in page and "<table>" in page
    assert (tmp_path / "out" / "reports" / "training" / "training_curves.png").is_file()
    assert (paths["retrieval"] / "retrieval.csv").is_file()
    # a second call finds every stage done and only re-evaluates
    before = (tmp_path / "out" / "runs" / "encoder_ps" / "checkpoints" / "last.pt").stat().st_mtime
    table2_before = (paths["table2"] / "table2.csv").stat().st_mtime_ns
    again = reproduce(tmp_path / "out", config, device="cpu")
    assert (tmp_path / "out" / "runs" / "encoder_ps" / "checkpoints" / "last.pt").stat().st_mtime == before
    # Table 2's inputs are unchanged, so its results are reused, not recomputed
    assert (paths["table2"] / "table2.csv").stat().st_mtime_ns == table2_before
    assert "## Table 2" in again["summary"].read_text()
