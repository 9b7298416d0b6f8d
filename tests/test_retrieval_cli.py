"""``mixeval retrieval`` end to end on the synthetic set: table, chance level, shared cache, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from mixeval.cli import app
from mixfx.io.checkpoint import save_model_checkpoint
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

runner = CliRunner()
# the sets of tests/test_disentangle_pipeline.py: 3 segments (2 per song) × 3 configurations of 0.5 s,
# gain and pan as single FX, 2 seeds
SETS = ["--quick", "--segments", "3", "--configs", "3", "--seconds", "0.5", "--segments-per-song", "2",
        "--single-fx", "gain,pan", "--threads", "1"]
CASES = ("multitrack_full", "stem_full", "multitrack_single", "stem_single")
METRICS = ("R@1", "R@5", "R@10", "MRR")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, one_thread) -> Path:
    """A tiny random-init FXencoder checkpoint labelled Φa."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = FXEncoder(FXEncoderConfig.tiny())
    return save_model_checkpoint(tmp_path_factory.mktemp("retrieval") / "enc.pt", model, extra={"label": "Φa"})


def run_cli(command: str, *args) -> tuple[int, str]:
    res = runner.invoke(app, [command, *map(str, args)])
    return res.exit_code, res.output


def test_retrieval_after_disentangle_embeds_nothing_and_writes_the_table(synth_root, encoder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    code, text = run_cli("disentangle", "--data", synth_root, "-e", encoder, "--out", tmp_path / "dis", "--cache-dir", cache,
                         "--no-figures", "--dci-trees", "1", *SETS)
    assert code == 0, text

    def forbidden(*args, **kwargs):
        raise AssertionError("retrieval after disentangle must not render audio or call an encoder")

    monkeypatch.setattr(FXEncoder, "forward", forbidden)
    monkeypatch.setattr("mixeval.pipelines.embedded_sets.render_items", forbidden)
    out = tmp_path / "ret"
    code, text = run_cli("retrieval", "--data", synth_root, "-e", encoder, "--out", out, "--cache-dir", cache, *SETS)
    assert code == 0, text
    assert " 0 misses" in text and "| Φa |" in text  # the table is printed
    for name in ("retrieval.csv", "retrieval.md", "retrieval.tex", "scores.csv", "run.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "retrieval.csv")
    assert list(table["label"]) == ["Φa", "pure noise", "chance (random ranking)"]
    assert list(table["type"]) == ["encoder", "noise", "chance"] and (table["seeds"] == 2).all()
    for case in CASES:
        for metric in METRICS:
            assert table[f"{case}.{metric}.mean"].between(0, 1).all(), (case, metric)
    # 9 items, 2 positives per query among 8 others: R@10 ≥ R@5 ≥ R@1, and R@10 = 1 (k ≥ n − 1)
    assert np.allclose(table["multitrack_full.R@10.mean"], 1.0)
    assert (table["stem_full.R@5.mean"] >= table["stem_full.R@1.mean"]).all()
    # the analytic chance level: P(first of 2 positives among 8 at rank 1) = 2/8
    assert table.loc[2, "multitrack_full.R@1.mean"] == pytest.approx(0.25) and table.loc[2, "stem_single.R@1.std"] == 0
    # same numbers as the retrieval table next to Table 1
    assert np.allclose(table.drop(columns=["label", "type"]).to_numpy(dtype=float),
                       pd.read_csv(tmp_path / "dis" / "retrieval.csv").drop(columns=["label", "type"]).to_numpy(dtype=float),
                       equal_nan=True)
    md = (out / "retrieval.md").read_text()
    assert "**" in md and "R@1" in md and "Multitrack, full FX" in md
    assert r"\label{tab:retrieval}" in (out / "retrieval.tex").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["evalset"]["protocol"] == "paper" and [r["type"] for r in run["representations"]] == ["encoder", "noise"]
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["subset"]) >= {"mixture", "vocals", "gain/mixture", "pan/bass"}


def test_noise_codes_score_near_the_chance_level(synth_root, encoder, tmp_path):
    out = tmp_path / "ret"
    code, text = run_cli("retrieval", "--data", synth_root, "-e", encoder, "--out", out, *SETS,
                         "--configs", "8", "--seeds", "4")
    assert code == 0, text
    table = pd.read_csv(out / "retrieval.csv").set_index("type")
    for case in CASES:
        for metric in ("R@1", "R@5", "MRR"):
            noise, chance = table.loc["noise", f"{case}.{metric}.mean"], table.loc["chance", f"{case}.{metric}.mean"]
            assert abs(noise - chance) < 0.12, (case, metric, noise, chance)
    # 24 items, 2 positives each among 23: chance R@1 = 2/23
    assert table.loc["chance", "stem_full.R@1.mean"] == pytest.approx(2 / 23)


def test_bad_input_gives_one_line_and_writes_nothing(synth_root, encoder, tmp_path):
    out = tmp_path / "report"
    cases = {
        "nothing to evaluate": (["--data", synth_root], "nothing to evaluate"),
        "iid": (["--data", synth_root, "-e", encoder, "--protocol", "iid"], "retrieval needs 'paper'"),
        "missing data": (["--data", tmp_path / "nowhere", "-e", encoder], "nowhere"),
        "baseline": (["--data", synth_root, "-e", encoder, "--baseline", "mee"], "baseline"),
    }
    for name, (extra, message) in cases.items():
        code, text = run_cli("retrieval", *extra, "--out", out, *SETS)
        lines = [line for line in text.splitlines() if line.strip()]
        assert code == 1, (name, text)
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (name, text)
        assert not out.exists(), name


def test_disentangle_skips_the_retrieval_extra_when_it_is_undefined(synth_root, encoder, tmp_path, monkeypatch):
    from mixeval.errors import MixevalError

    def undefined(*args, **kwargs):
        raise MixevalError("codes: cosine similarity is undefined for all-zero rows, got 3")

    monkeypatch.setattr("mixeval.pipelines.disentangle.retrieval_scores", undefined)
    out = tmp_path / "dis"
    code, text = run_cli("disentangle", "--data", synth_root, "-e", encoder, "--out", out, "--no-figures",
                         "--dci-trees", "1", *SETS)
    assert code == 0, text
    assert "retrieval.csv not written: codes: cosine similarity is undefined" in text
    assert (out / "table1.csv").is_file() and not (out / "retrieval.csv").exists()
