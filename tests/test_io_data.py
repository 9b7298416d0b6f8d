"""Audio loading errors, resampling, atomic writes, the MUSDB layout and IR folders."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from mixfx.data.musdb import MUSDB_VALIDATION, MultitrackSegments, list_songs, remove_silence
from mixfx.errors import MixfxError
from mixfx.fx.ir import load_ir_folder, measure_rt60, synthetic_ir
from mixfx.io.atomic import atomic_dir, atomic_path, atomic_write, current_umask
from mixfx.io.audio import load_audio, save_audio

SR = 44100


def write(path, data, sr=SR, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def test_mono_is_upmixed_and_other_rates_resampled(tmp_path, caplog):
    t = np.arange(48000) / 48000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    path = write(tmp_path / "mono48k.wav", tone, sr=48000)
    with caplog.at_level("INFO"):
        x = load_audio(path)
    assert x.shape == (2, 44100) and x.dtype == torch.float32
    assert torch.equal(x[0], x[1])
    assert "mono" in caplog.text and "48000 Hz -> 44100 Hz" in caplog.text
    spec = np.abs(np.fft.rfft(x[0].numpy()))
    assert abs(np.argmax(spec) * SR / x.shape[-1] - 1000) < 2  # the tone kept its pitch


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage"), "cannot read audio"),
        (lambda p: write(p, np.zeros((0, 2))), "no audio samples"),
        (lambda p: write(p, np.array([[0.0, np.nan]] * 100)), "NaN or Inf"),
        (lambda p: write(p, np.zeros((100, 3))), "expected 1 or 2 channels, got 3"),
        (lambda p: write(p, 0.1 * np.ones((441, 2))), "too short"),
        (lambda p: write(p, np.zeros((44100, 2))), "silent"),
        (lambda p: None, "file not found"),
    ],
)
def test_bad_audio_files_raise_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(MixfxError) as err:
        load_audio(path, min_seconds=0.5, allow_silent=False)
    assert message in str(err.value) and "bad.wav" in str(err.value) and "\n" not in str(err.value)


def test_save_audio_round_trip_and_atomicity(tmp_path):
    x = 0.5 * torch.randn(2, 1000).clamp(-1, 1)
    path = save_audio(tmp_path / "out.wav", x)
    assert torch.allclose(load_audio(path), x)
    with pytest.raises(MixfxError):
        save_audio(tmp_path / "nan.wav", torch.full((2, 10), float("nan")))
    assert not (tmp_path / "nan.wav").exists()
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "half.txt", "w") as f:
            f.write("partial")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == [tmp_path / "out.wav"]


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_atomic_outputs_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    from conftest import modes_under

    umask(mask)
    assert current_umask() == mask
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("x")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"y")
    save_audio(tmp_path / "c.wav", torch.zeros(2, 10))
    with atomic_dir(tmp_path / "test") as tmp:
        with atomic_write(tmp / "media" / "x.wav", "wb") as f:
            f.write(b"z")
    modes = modes_under(tmp_path)
    modes.pop(".")  # made by pytest
    assert modes == {"a.txt": file_mode, "b.bin": file_mode, "c.wav": file_mode,
                     "test": dir_mode, "test/media": dir_mode, "test/media/x.wav": file_mode}
    assert os.umask(mask) == mask  # reading the umask left it as it was


def test_mp3_stem_folder_is_found_and_messages_name_every_suffix(tmp_path):
    from mixfx.io.audio import AUDIO_SUFFIX_TEXT, AUDIO_SUFFIXES
    from mixfx.pipelines.transfer_songs import as_song, list_songs

    if "MP3" not in sf.available_formats() or "MPEG_LAYER_III" not in sf.available_subtypes("MP3"):
        pytest.skip("this libsndfile has no MP3 support")
    assert ".mp3" in AUDIO_SUFFIXES and ".mp3" in AUDIO_SUFFIX_TEXT and ".aiff" in AUDIO_SUFFIX_TEXT
    song = tmp_path / "songs" / "s1"
    song.mkdir(parents=True)
    g = np.random.default_rng(0)
    for stem in ("drums", "bass", "other", "vocals"):
        try:
            sf.write(str(song / f"{stem}.mp3"), 0.1 * g.standard_normal((SR, 2)), SR, format="MP3", subtype="MPEG_LAYER_III")
        except sf.LibsndfileError:
            pytest.skip("this libsndfile reads MP3 but cannot encode it")
    found = as_song(song)
    assert found.stems is not None and sorted(p.suffix for p in found.stems.values()) == [".mp3"] * 4
    x = load_audio(found.stems["vocals"])
    assert x.shape[0] == 2 and abs(x.shape[1] - SR) < 2 * 1152 and x.abs().max() > 0.05
    sf.write(str(tmp_path / "songs" / "mix.mp3"), 0.1 * g.standard_normal((SR, 2)), SR, format="MP3", subtype="MPEG_LAYER_III")
    assert [(s.name, s.stems is None) for s in list_songs(tmp_path / "songs")] == [("mix", True), ("s1", False)]
    (song / "vocals.mp3").unlink()
    with pytest.raises(MixfxError, match="missing stem") as err:
        as_song(song)
    assert AUDIO_SUFFIX_TEXT in str(err.value) and ".wav)" not in str(err.value)


def make_musdb(root, names_train, names_test, seconds=3.0, silent_head=0.0):
    g = np.random.default_rng(0)
    for split, names in (("train", names_train), ("test", names_test)):
        for name in names:
            for stem in ("drums", "bass", "other", "vocals", "mixture"):
                x = 0.1 * g.standard_normal((int(seconds * SR), 2))
                x[: int(silent_head * SR)] = 0
                write(root / split / name / f"{stem}.wav", x)


def test_standard_split_uses_official_validation_names(tmp_path):
    make_musdb(tmp_path, ["Song A", MUSDB_VALIDATION[0], MUSDB_VALIDATION[5]], ["Test 1"], seconds=0.5)
    assert [s.name for s in list_songs(tmp_path, "train")] == ["Song A"]
    assert {s.name for s in list_songs(tmp_path, "valid")} == {MUSDB_VALIDATION[0], MUSDB_VALIDATION[5]}
    assert [s.name for s in list_songs(tmp_path, "test")] == ["Test 1"]
    assert len(list_songs(tmp_path, "train+valid")) == 3


def test_validation_txt_and_layout_errors(tmp_path):
    make_musdb(tmp_path, ["s1", "s2"], ["t1"], seconds=0.5)
    (tmp_path / "validation.txt").write_text("s2\n")
    assert [s.name for s in list_songs(tmp_path, "valid")] == ["s2"]
    (tmp_path / "train" / "s1" / "bass.wav").unlink()
    with pytest.raises(MixfxError, match="missing bass.wav"):
        list_songs(tmp_path, "train")
    with pytest.raises(MixfxError, match="no test/ folder"):
        list_songs(tmp_path / "train", "test")
    with pytest.raises(MixfxError, match="unknown split"):
        list_songs(tmp_path, "dev")


def test_segments_avoid_silence_and_pairs_differ(tmp_path):
    make_musdb(tmp_path, ["s1"], ["t1"], seconds=6.0, silent_head=2.0)
    data = MultitrackSegments(tmp_path, "train", silence_threshold_db=-50.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        x, song, start = data.sample("vocals", SR, generator=g)
        assert start >= 2 * SR - data._hop and float(x.square().mean()) > 1e-4
    a, b, _ = data.sample_pair("drums", SR, generator=g)
    assert a.shape == b.shape == (2, SR) and not torch.allclose(a, b)
    with pytest.raises(MixfxError, match="no 5.5 s of non-silent"):
        data.sample("bass", int(5.5 * SR), generator=g)


def test_remove_silence_drops_silent_frames():
    x = torch.cat([torch.zeros(2, SR), 0.1 * torch.randn(2, SR), torch.zeros(2, SR)], dim=1)
    y = remove_silence(x, SR, threshold_db=-60)
    assert abs(y.shape[-1] - SR) <= 4410 and float(y.abs().min(dim=0).values.mean()) > 0


def test_ir_folder_official_layout_and_flat(tmp_path):
    g = torch.Generator().manual_seed(0)
    for rt, bin_ in ((0.3, "200-400"), (0.9, "800-1000"), (3.5, "3000-4000"), (3.9, "3500-4000")):
        ir = synthetic_ir(rt, generator=g)
        write(tmp_path / "official" / "coll" / "RT60_avg" / bin_ / f"ir{rt}" / "impulse_response.wav", ir.T.numpy())
        write(tmp_path / "flat" / f"ir{rt}.wav", ir.T.numpy())
    bank = load_ir_folder(tmp_path / "official")
    assert len(bank) == 4 and bank.n_groups == 3  # bins >= 3000 ms merge into one long group
    flat = load_ir_folder(tmp_path / "flat")
    assert len(flat) == 4 and torch.allclose(flat.rt60_s, torch.tensor([0.3, 0.9, 3.5, 3.9]), rtol=0.2)
    idx = bank.sample(300, torch.Generator().manual_seed(1))
    counts = torch.bincount(bank.group[idx], minlength=3).float() / 300
    assert torch.all((counts - 1 / 3).abs() < 0.1)  # uniform over groups
    with pytest.raises(MixfxError, match="IR folder not found"):
        load_ir_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixfxError, match="no impulse-response"):
        load_ir_folder(tmp_path / "empty")
