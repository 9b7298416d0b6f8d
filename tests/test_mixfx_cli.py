"""Every ``mixfx`` command but ``transfer`` (tested in test_transfer_cli.py) through the CLI, at tiny sizes.

One chain of commands on one small synthetic set: synth-dataset → fx-features → fx-normalize →
train-encoder → train-cloner, plus manipulate on two of its stems. Each test checks what the
command wrote against a definition or an independent computation, not only that files exist.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from mixfx import SAMPLE_RATE, STEMS
from mixfx.cli import app

runner = CliRunner()
SONGS, SECONDS = 3, 3.0


def _invoke(*args) -> Path:
    """Run ``mixfx -q ARGS``; the command prints its output path on stdout."""
    res = runner.invoke(app, ["-q", *[str(a) for a in args]])
    assert res.exit_code == 0, (args[0], res.output, res.exception)
    return Path(res.stdout.strip().splitlines()[-1])


def _read(path: Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    assert sr == SAMPLE_RATE
    return x.T


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    """The outputs of the command chain (each command reads the previous one's output)."""
    root = tmp_path_factory.mktemp("cli")
    out = {"root": root}
    out["data"] = _invoke("synth-dataset", root / "data", "--songs", SONGS, "--seconds", SECONDS, "--seed", 1)
    out["features"] = _invoke("fx-features", out["data"], "-o", root / "features.npz")
    out["norm"] = _invoke("fx-normalize", out["data"], "-f", out["features"], "-o", root / "norm", "--seed", 5)
    out["encoder"] = _invoke("train-encoder", out["norm"], "--run", root / "enc", "--variant", "none", "--steps", 2,
                             "--contents", 1, "--seed", 3, "--workers", 0, "--device", "cpu")
    out["cloner"] = _invoke("train-cloner", out["norm"], "-e", out["encoder"], "--run", root / "cl", "--steps", 2,
                            "--batch", 1, "--seed", 4, "--workers", 0, "--device", "cpu")
    return out


def _songs(root: Path) -> dict[str, Path]:
    return {p.name: p for split in ("train", "test") for p in sorted((root / split).iterdir()) if p.is_dir()}


def test_synth_dataset_layout_and_mixtures(chain):
    data = chain["data"]
    songs = _songs(data)
    assert len(songs) == SONGS and {p.parent.name for p in songs.values()} == {"train", "test"}
    meta = json.loads((data / "dataset.json").read_text())
    assert (meta["seed"], meta["songs"], meta["seconds"]) == (1, SONGS, SECONDS)
    valid = (data / "validation.txt").read_text().split()
    assert valid and set(valid) <= {n for n, p in songs.items() if p.parent.name == "train"}
    for song in songs.values():
        stems = {s: _read(song / f"{s}.wav") for s in STEMS}
        assert all(x.shape == (2, round(SECONDS * SAMPLE_RATE)) for x in stems.values())
        # documented: mixture.wav is the exact sample-wise sum of the four stem files (16-bit: to one LSB)
        np.testing.assert_allclose(_read(song / "mixture.wav"), sum(stems.values()), rtol=0, atol=1.01 / 32768)


def test_fx_features_file(chain):
    from mixfx.fxnorm.targets import load_features

    with np.load(chain["features"], allow_pickle=False) as z:
        keys = set(z.files)
        n_fft = int(z["n_fft"])
        assert int(z["sample_rate"]) == SAMPLE_RATE and list(z["stems"]) == list(STEMS)
        for s in STEMS:
            assert {f"{k}.{s}" for k in ("eq", "compression", "imager", "panning", "loudness")} <= keys
            assert z[f"eq.{s}"].shape == (n_fft // 2 + 1,) and z[f"compression.{s}"].shape == (2,)
            assert np.isfinite(z[f"eq.{s}"]).all() and -70 < float(z[f"loudness.{s}"]) < 0
            assert float(z[f"panning.{s}"]) == 0.5  # the panning target is fixed at a 50/50 balance
    feats = load_features(chain["features"])
    assert tuple(feats.stems) == STEMS


def test_fx_normalize_reaches_the_feature_targets(chain):
    pyloudnorm = pytest.importorskip("pyloudnorm")

    norm, data = chain["norm"], chain["data"]
    record = json.loads((norm / "fx_normalization.json").read_text())
    assert record["seed"] == 5 and Path(record["features"]) == chain["features"].resolve()
    assert set(_songs(norm)) == set(_songs(data))
    with np.load(chain["features"], allow_pickle=False) as z:
        targets = {s: float(z[f"loudness.{s}"]) for s in STEMS}
    meter = pyloudnorm.Meter(SAMPLE_RATE)  # an independent BS.1770 implementation
    for name, song in _songs(norm).items():
        stems = {s: _read(song / f"{s}.wav") for s in STEMS}
        np.testing.assert_allclose(_read(song / "mixture.wav"), sum(stems.values()), rtol=0, atol=1e-6)
        for s, y in stems.items():
            x = _read(_songs(data)[name] / f"{s}.wav")
            if np.abs(x).max() < 1e-3 or np.abs(y).max() >= 0.999:
                continue  # silent stem, or loudness lowered to keep the peak at 1 (documented)
            assert meter.integrated_loudness(y.T) == pytest.approx(targets[s], abs=0.05), (name, s)
            assert (y[0] ** 2).sum() / (y ** 2).sum() == pytest.approx(0.5, abs=1e-3)  # balanced L/R energy
            assert np.abs(y - x).max() > 1e-3  # the stem was processed


def _rows(run: Path, kind: str, name: str) -> list[tuple[int, float]]:
    with open(run / "metrics.csv") as f:
        return [(int(r["step"]), float(r["value"])) for r in csv.DictReader(f) if r["kind"] == kind and r["name"] == name]


def test_train_encoder_writes_a_loadable_checkpoint_with_the_options(chain):
    from mixfx.io.checkpoint import load_model_checkpoint
    from mixfx.models.encoder import FXEncoderConfig
    from mixfx.models.loading import load_encoder

    path, run = chain["encoder"], chain["root"] / "enc"
    assert path == run / "checkpoints" / "last.pt"
    ckpt = load_model_checkpoint(path)
    assert ckpt.kind == "fxencoder" and ckpt.step == 2 and ckpt.extra["variant"] == "none"
    config = json.loads((run / "config.json").read_text())
    assert (config["steps"], config["contents"], config["seed"], config["variant"]) == (2, 1, 3, "none")
    enc = load_encoder(path)
    assert enc.config == FXEncoderConfig.from_dict(config["encoder"])
    losses = _rows(run, "train", "loss")
    assert [s for s, _ in losses][-1] == 2 and all(np.isfinite(v) for _, v in losses)
    with torch.no_grad():
        z = enc(0.1 * torch.randn(2, 2, SAMPLE_RATE // 2, generator=torch.Generator().manual_seed(0)))
    assert z.shape == (2, enc.dim) and torch.isfinite(z).all()


def test_train_cloner_is_conditioned_on_the_given_encoder(chain):
    from mixfx.io.checkpoint import load_model_checkpoint
    from mixfx.models.loading import load_models

    path, run = chain["cloner"], chain["root"] / "cl"
    ckpt = load_model_checkpoint(path)
    assert ckpt.kind == "mixfxcloner" and ckpt.step == 2
    config = json.loads((run / "config.json").read_text())
    assert Path(config["encoder"]) == chain["encoder"] and (config["steps"], config["batch"], config["seed"]) == (2, 1, 4)
    enc, cl = load_models(chain["encoder"], path)  # checks cond_dim == the encoder's dim
    assert cl.config.cond_dim == enc.dim
    assert [s for s, _ in _rows(run, "train", "loss")][-1] == 2


def test_manipulate_output_equals_the_chain_with_the_recorded_parameters(chain, tmp_path):
    import pandas as pd

    from mixfx.fx.chain import FXManipulator
    from mixfx.fx.params import FXConfig

    song = next(iter(_songs(chain["data"]).values()))
    inputs = [song / "vocals.wav", song / "other.wav"]
    out = _invoke("manipulate", *inputs, "-o", tmp_path / "fx", "--seed", 7, "--variants", 2, "--stem", "vocals")
    params = pd.read_csv(out / "parameters.csv")
    factors = pd.read_csv(out / "factors.csv").set_index("file")
    assert sorted(params["file"].unique()) == ["other_fx0.wav", "other_fx1.wav", "vocals_fx0.wav", "vocals_fx1.wav"]
    fx = FXManipulator(sample_rate=SAMPLE_RATE)
    template = fx.sample(1, generator=torch.Generator().manual_seed(0), stems="vocals")
    outputs = {}
    for file, t in params.groupby("file", sort=True):
        values, applied = {}, {}
        for r in t.itertuples():
            if r.effect == "order":
                continue
            key = f"{r.effect}.{r.parameter}"
            values[key] = torch.tensor([r.value]).to(template.values[key].dtype)
            applied[r.effect] = torch.tensor([bool(r.applied)])
        order = {r.parameter: torch.tensor([bool(r.value)]) for r in t.itertuples() if r.effect == "order"}
        config = FXConfig(stems=["vocals"], applied=applied, values=values, eq_first=order["eq_first"],
                          pan_first=order["pan_first"], specs=template.specs)
        x = torch.from_numpy(_read(song / f"{file.split('_fx')[0]}.wav")).float()
        expected = fx.apply(x[None], config)[0].double().numpy()
        written = _read(out / file)
        np.testing.assert_allclose(written, expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(factors.loc[file].to_numpy(float), config.factor_matrix()[0].numpy(), atol=1e-6)
        outputs[file] = written
    # two variants per input: different configurations, so different audio
    assert np.abs(outputs["vocals_fx0.wav"] - outputs["vocals_fx1.wav"]).max() > 1e-3
