"""``mixfx transfer`` end to end on stem folders with tiny models: files, interpolation, many songs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from mixfx.cli import app
from mixfx.errors import MixfxError
from mixfx.io.checkpoint import save_model_checkpoint
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")


def write_song(folder, seed, seconds=1.5):
    g = np.random.default_rng(seed)
    for k, stem in enumerate(STEMS):
        x = 0.1 * g.standard_normal((int(seconds * SR), 2)) * (k + 1) / 4
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{stem}.wav", x.astype(np.float32), SR, subtype="FLOAT")
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    torch.manual_seed(0)
    enc = save_model_checkpoint(root / "enc.pt", FXEncoder(FXEncoderConfig.tiny()))
    cl = save_model_checkpoint(root / "cl.pt", MixFXCloner(ClonerConfig.tiny(cond_dim=64)))
    songs = root / "songs"
    write_song(songs / "s1", 1)
    write_song(songs / "s2", 2, seconds=2.0)
    ref_a, ref_b = write_song(root / "refA", 3), write_song(root / "refB", 4)
    return root, enc, cl, songs, ref_a, ref_b


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def read(path):
    return sf.read(str(path), dtype="float32")[0]


def test_stem_folders_many_songs_and_files(setup, tmp_path):
    root, enc, cl, songs, ref_a, _ = setup
    code, out = run("transfer", "-i", songs, "-r", ref_a, "-o", tmp_path / "out", "-e", enc, "-c", cl, "--device", "cpu",
                    "--segment", 22050)
    assert code == 0, out
    for song, seconds in (("s1", 1.5), ("s2", 2.0)):
        mix = read(tmp_path / "out" / song / "mixture.wav")
        assert mix.shape == (int(seconds * SR), 2)
        stems = sum(read(tmp_path / "out" / song / f"{s}.wav") for s in STEMS)
        assert np.allclose(mix, stems, atol=1e-5)  # the mixture is the sum of the converted stems


def test_windowed_conversion_equals_single_pass(setup, tmp_path):
    """Windows (with the cloner's context) join without seams: same output as one pass over the song."""
    root, enc, cl, songs, ref_a, _ = setup
    for name, segment in (("long", 2**19), ("short", 8192)):
        code, out = run("transfer", "-i", songs / "s2", "-r", ref_a, "-o", tmp_path / name, "-e", enc, "-c", cl,
                        "--device", "cpu", "--segment", segment)
        assert code == 0, out
    a, b = read(tmp_path / "long" / "s2" / "mixture.wav"), read(tmp_path / "short" / "s2" / "mixture.wav")
    assert np.abs(a - b).max() < 1e-4 * max(np.abs(a).max(), 1e-6)


def test_interpolation_end_points(setup, tmp_path):
    root, enc, cl, songs, ref_a, ref_b = setup
    common = ["-i", songs / "s1", "-e", enc, "-c", cl, "--device", "cpu"]
    outputs = {}
    for name, extra in (("a", ["-r", ref_a]), ("b", ["-r", ref_b]), ("a0", ["-r", ref_a, "--reference-b", ref_b, "--alpha", 0]),
                        ("b1", ["-r", ref_a, "--reference-b", ref_b, "--alpha", 1])):
        code, out = run("transfer", *common, *extra, "-o", tmp_path / name)
        assert code == 0, out
        outputs[name] = read(tmp_path / name / "s1" / "mixture.wav")
    assert np.allclose(outputs["a0"], outputs["a"], atol=1e-6)
    assert np.allclose(outputs["b1"], outputs["b"], atol=1e-6)
    assert not np.allclose(outputs["a"], outputs["b"])


def test_errors_are_one_line(setup, tmp_path):
    root, enc, cl, songs, ref_a, _ = setup
    mixture = tmp_path / "mix.wav"
    sf.write(mixture, 0.1 * np.ones((SR, 2), np.float32), SR)
    cases = [
        (["-i", mixture, "-r", ref_a, "-e", enc, "-c", cl], "--separator-weights"),
        (["-i", songs, "-r", ref_a, "-e", tmp_path / "missing.pt", "-c", cl], "not found"),
        (["-i", songs, "-r", ref_a, "-e", cl, "-c", cl], "FXencoder"),
    ]
    big = save_model_checkpoint(tmp_path / "cl32.pt", MixFXCloner(ClonerConfig.tiny(cond_dim=32)))
    cases.append((["-i", songs, "-r", ref_a, "-e", enc, "-c", big], "conditioned on 32-d"))
    for args, message in cases:
        code, out = run("transfer", *args, "-o", tmp_path / "o", "--device", "cpu")
        assert code == 1 and message in out and "Traceback" not in out, out


def test_mixture_inputs_go_through_a_separator(setup, tmp_path):
    """A small torchaudio HDemucs saved as a state dict separates mixture inputs and references."""
    torchaudio_models = pytest.importorskip("torchaudio.models")
    from mixfx.models.separation import load_separator

    root, enc, cl, songs, ref_a, _ = setup
    torch.manual_seed(0)
    model = torchaudio_models.HDemucs(sources=list(STEMS), channels=4, depth=6)  # hdemucs_high, narrow
    weights = tmp_path / "hdemucs.pt"
    torch.save(model.state_dict(), weights)
    sep = load_separator(weights)
    mix = 0.1 * torch.randn(2, SR)
    stems = sep.separate(mix)
    assert set(stems) == set(STEMS) and all(s.shape == (2, SR) for s in stems.values())
    mixture = tmp_path / "song" / "mixture.wav"
    mixture.parent.mkdir()
    sf.write(mixture, mix.T.numpy(), SR, subtype="FLOAT")
    code, out = run("transfer", "-i", mixture.parent, "-r", ref_a, "-o", tmp_path / "out", "-e", enc, "-c", cl,
                    "--separator-weights", weights, "--device", "cpu")
    assert code == 0, out
    assert read(tmp_path / "out" / "song" / "mixture.wav").shape == (SR, 2)
    junk = tmp_path / "junk.pt"
    torch.save({"not": torch.zeros(1)}, junk)
    with pytest.raises(MixfxError, match="not a torchaudio HDemucs") as info:
        load_separator(junk)
    assert "\n" not in str(info.value)
    # the CLI turns the same bad weights into one stderr line and exit 1, with nothing written
    code, out = run("transfer", "-i", mixture.parent, "-r", ref_a, "-o", tmp_path / "out2", "-e", enc, "-c", cl,
                    "--separator-weights", junk, "--device", "cpu")
    assert code == 1 and "not a torchaudio HDemucs" in out and "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]  # (a warning may precede it)
    assert len(errors) == 1 and "not a torchaudio HDemucs" in errors[0] and not (tmp_path / "out2" / "song").exists()
