"""``mixeval disentangle`` end to end on the synthetic set: Table 1, Fig. 2, cache, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from mixeval.cli import app
from mixeval.evalset import EvalSetConfig
from mixeval.pipelines.disentangle import DisentangleConfig, run_disentangle
from mixfx.fx.ir import synthetic_ir_bank
from mixfx.io.audio import save_audio
from mixfx.io.checkpoint import save_model_checkpoint
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

runner = CliRunner()
# 3 segments (2 test songs, 2 per song) × 3 configurations of 0.5 s, gain and pan as single FX,
# 2 seeds, one fixed 1-tree forest per factor: small enough for a unit test on 2 busy cores.
SMALL = ["--quick", "--segments", "3", "--configs", "3", "--seconds", "0.5", "--segments-per-song", "2",
         "--single-fx", "gain,pan", "--dci-trees", "1", "--threads", "1"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch / OpenMP thread: these small workloads only lose to thread contention on a busy 2-core box."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """Two tiny random-init encoder checkpoints (different seeds), a cloner checkpoint, two short IRs."""
    root = tmp_path_factory.mktemp("disentangle_assets")
    paths = {}
    for name, seed, label in (("enc_a", 0, "Φa"), ("enc_b", 1, None)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FXEncoder(FXEncoderConfig.tiny())
        paths[name] = save_model_checkpoint(root / f"{name}.pt", model, extra={"label": label} if label else None)
    paths["cloner"] = save_model_checkpoint(root / "cloner.pt", MixFXCloner(ClonerConfig.tiny()))
    bank = synthetic_ir_bank(per_group=1, groups_s=((0.2, 0.3), (0.5, 0.6)))
    for i in range(len(bank)):
        save_audio(root / "irs" / f"ir{i}.wav", bank.irs[i, :, : int(bank.lengths[i])], 44100)
    paths["irs"] = root / "irs"
    (root / "junk.pt").write_bytes(b"not a checkpoint at all")
    paths["junk"] = root / "junk.pt"
    return paths


def run_cli(*args) -> tuple[int, str]:
    res = runner.invoke(app, ["disentangle", *map(str, args)])
    return res.exit_code, res.output


def test_table1_and_fig2_for_two_encoders_then_cached(synth_root, assets, tmp_path, monkeypatch):
    out = tmp_path / "report"
    code, text = run_cli("--data", synth_root, "-e", assets["enc_a"], "-e", assets["enc_b"], "--out", out,
                         "--ir-dir", assets["irs"], *SMALL)
    assert code == 0, text
    for name in ("table1.csv", "table1.md", "table1.tex", "fig2_tsne.png", "fig2_tsne.pdf", "fig2_pca.png",
                 "fig2_pca.pdf", "scores.csv", "run.json", "factors/columns.json", "factors/seed0_full.csv",
                 "factors/seed1_pan.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "table1.csv")
    assert list(table["label"]) == ["Φa", "enc_b", "pure noise", "ideal (codes = factors)"]
    assert list(table["type"]) == ["encoder", "encoder", "noise", "ideal"]
    assert (table["seeds"] == 2).all() and table.loc[2, "dim"] == 64  # noise has the encoder's size
    for case in ("multitrack_full", "stem_full", "multitrack_single", "stem_single"):
        for metric in ("dcimig", "dci_informativeness"):
            values = table[f"{case}.{metric}.mean"]
            assert values.between(0, 1).all(), (case, metric)
    # the ideal code (codes = factors) is far more explicit than noise (one 1-tree forest on 9 items:
    # the ideal row scores ≈ 0.90–0.93 and noise ≈ 0.12–0.15 depending on the forests' draws)
    for case in ("multitrack_full", "stem_full"):
        ideal, noise = table.loc[3, f"{case}.dci_informativeness.mean"], table.loc[2, f"{case}.dci_informativeness.mean"]
        assert ideal > 0.8 and ideal > noise + 0.5
    md = (out / "table1.md").read_text()
    assert "Protocol: paper" in md and "**" in md and "pure noise" in md
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["subset"]) >= {"mixture", "vocals", "gain/mixture", "pan/bass"}
    factors = pd.read_csv(out / "factors" / "seed0_pan.csv")
    assert len(factors) == 9 and factors["configuration"].nunique() == 3
    assert [c for c in factors.columns if "/" in c] == [f"{s}/pan.pan" for s in ("drums", "bass", "other", "vocals")]
    run = json.loads((out / "run.json").read_text())
    assert run["fx_normalized"] is False and run["config"]["evalset"]["protocol"] == "paper"
    assert not list(out.glob(".disentangle.*"))  # no staging leftovers
    retrieval = pd.read_csv(out / "retrieval.csv")  # FX retrieval from the same embeddings, no ideal row
    assert list(retrieval["label"]) == ["Φa", "enc_b", "pure noise", "chance (random ranking)"]
    assert retrieval["multitrack_full.R@1.mean"].between(0, 1).all() and (out / "retrieval.md").is_file()
    first = (out / "table1.csv").read_text()

    # second run: everything from the cache — no audio rendered, no encoder called
    def forbidden(*args, **kwargs):
        raise AssertionError("the second run must not render audio or call an encoder")

    monkeypatch.setattr(FXEncoder, "forward", forbidden)
    monkeypatch.setattr("mixeval.pipelines.embedded_sets.render_items", forbidden)
    code, text = run_cli("--data", synth_root, "-e", assets["enc_a"], "-e", assets["enc_b"], "--out", out,
                         "--ir-dir", assets["irs"], *SMALL)
    assert code == 0, text
    assert " 0 misses" in text
    assert (out / "table1.csv").read_text() == first


def test_bad_input_gives_one_line_and_writes_nothing(synth_root, assets, tmp_path):
    out = tmp_path / "report"
    base = ["--data", synth_root, "--out", out, "--ir-dir", assets["irs"], *SMALL]
    cases = {
        "junk": (["-e", assets["junk"]], "not a readable torch checkpoint"),
        "missing": (["-e", tmp_path / "nope.pt"], "not found"),
        "cloner": (["-e", assets["cloner"]], "expected an FXencoder"),
        "few songs": (["-e", assets["enc_a"], "--segments-per-song", "1"], "songs"),
        "protocol": (["-e", assets["enc_a"], "--protocol", "shared"], "protocol"),
        "baseline": (["-e", assets["enc_a"], "--baseline", "mee"], "baseline"),
    }
    for name, (extra, message) in cases.items():
        code, text = run_cli(*base, *extra)
        lines = [line for line in text.splitlines() if line.strip()]
        assert code == 1, (name, text)
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (name, text)
        assert not out.exists(), name
    # a checkpoint whose weights do not fit its stored architecture
    obj = torch.load(assets["enc_a"], weights_only=True)
    obj["config"]["channels"] = [8, 16, 32, 128]
    torch.save(obj, tmp_path / "mismatch.pt")
    code, text = run_cli(*base, "-e", tmp_path / "mismatch.pt")
    assert code == 1 and text.startswith("error: ") and len(text.strip().splitlines()) == 1, text
    # a dataset without a test split
    (tmp_path / "empty" / "train").mkdir(parents=True)
    code, text = run_cli("--data", tmp_path / "empty", "--out", out, "-e", assets["enc_a"], *SMALL)
    assert code == 1 and "test" in text and not out.exists(), text


def test_iid_protocol_with_handcrafted_baseline(synth_root, assets, tmp_path):
    """The iid protocol: metrics on one configuration per item, Fig. 2 still on the paper's shared sets."""
    ev = EvalSetConfig(segments=2, configs=3, seconds=0.5, protocol="iid", single_fx=("gain",))
    cfg = DisentangleConfig(evalset=ev, seeds=1, dci_grid="tiny", dci_trees=1, baselines=("mfcc",), tsne_single="gain")
    calls = []
    res = run_disentangle([], synth_root, tmp_path / "iid", config=cfg, ir_dir=assets["irs"],
                          progress=lambda *call: calls.append(call))
    assert [r.type for r in res.representations] == ["handcrafted", "noise", "ideal"]
    assert res.representations[1].dim == res.representations[0].dim == 122  # noise of the features' size
    assert res.cache_misses == 4  # 2 iid sets + 2 paper-protocol figure sets, one representation
    assert (24, 24, "embed") in calls and calls[-1] == (30, 30, "metrics")
    assert "Protocol: iid" in (tmp_path / "iid" / "table1.md").read_text()
    factors = pd.read_csv(tmp_path / "iid" / "factors" / "seed0_gain.csv")
    assert factors["configuration"].nunique() == 6  # every item its own configuration
    assert (tmp_path / "iid" / "fig2_tsne.png").is_file()
