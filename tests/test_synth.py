"""The built-in synthetic multitrack set (mixfx.data.synth)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixfx import STEMS
from mixfx.data import synth
from mixfx.data.synth import make_synth_dataset, split_counts
from mixfx.errors import MixfxError

SONGS, SECONDS, SEED, SR = 3, 3.0, 7, 44100
FILES = (*STEMS, "mixture")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_synth_dataset(tmp_path_factory.mktemp("a") / "synth", songs=SONGS, seconds=SECONDS, seed=SEED)


def _songs(root: Path) -> list[Path]:
    return sorted((p for split in ("train", "test") for p in (root / split).iterdir()), key=lambda p: p.name)


def _read(path: Path, dtype: str = "float64") -> np.ndarray:
    x, sr = sf.read(str(path), dtype=dtype, always_2d=True)
    assert sr == SR
    return x.T


def test_layout_and_splits(dataset):
    train = sorted(p.name for p in (dataset / "train").iterdir())
    test = sorted(p.name for p in (dataset / "test").iterdir())
    validation = (dataset / "validation.txt").read_text().split()
    assert len(train) + len(test) == SONGS and not set(train) & set(test)
    assert len(test) >= 1 and len(validation) >= 1 and len(set(train) - set(validation)) >= 1
    assert set(validation) <= set(train)
    for song in _songs(dataset):
        assert sorted(p.name for p in song.iterdir()) == sorted(f"{f}.wav" for f in FILES)
    meta = json.loads((dataset / "dataset.json").read_text())
    assert (meta["seed"], meta["songs"], meta["seconds"]) == (SEED, SONGS, SECONDS)
    assert meta["generator_version"] == synth.GENERATOR_VERSION
    assert meta["splits"]["validation"] == validation and meta["splits"]["test"] == test
    assert sorted(meta["splits"]["train"] + validation) == train
    assert not [p for p in dataset.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_files_are_stereo_full_length_and_not_silent(dataset):
    frames = round(SECONDS * SR)
    for song in _songs(dataset):
        for name in FILES:
            info = sf.info(str(song / f"{name}.wav"))
            assert (info.channels, info.samplerate, info.frames) == (2, SR, frames)
            assert info.format == "WAV" and info.subtype == "PCM_16"
            x = _read(song / f"{name}.wav")
            rms_db = 10 * np.log10(np.mean(x**2) + 1e-30)
            assert rms_db > -50.0, f"{song.name}/{name} nearly silent ({rms_db:.1f} dBFS)"
            assert np.abs(x).max() < 1.0


def test_mixture_is_sum_of_stems(dataset):
    for song in _songs(dataset):
        ints = {f: _read(song / f"{f}.wav", "int16").astype(np.int64) for f in FILES}
        np.testing.assert_array_equal(ints["mixture"], sum(ints[s] for s in STEMS))
        floats = {f: _read(song / f"{f}.wav", "float32") for f in FILES}
        np.testing.assert_allclose(floats["mixture"], sum(floats[s] for s in STEMS), atol=1e-6)


def test_stems_sound_like_their_parts(dataset):
    """The bass's strongest partial is a low one, below the other pitched stems'; mixes are stereo.

    (A property of the generator's ranges: bass roots MIDI 28-45, i.e. 41-110 Hz; a very bright
    bass patch can put a harmonic on top, so this is checked on the fixed test seed only.)
    """
    for song in _songs(dataset):
        peak = {}
        for stem in STEMS:
            x = _read(song / f"{stem}.wav").mean(axis=0)
            power = np.abs(np.fft.rfft(x)) ** 2
            peak[stem] = float(np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(power)])
        assert peak["bass"] < 250.0 and peak["bass"] < min(peak["other"], peak["vocals"]), peak
        mix = _read(song / "mixture.wav")
        assert not np.allclose(mix[0], mix[1])  # stereo, not dual mono


def test_songs_differ(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())["tracks"]
    plans = [(m["tempo_bpm"], m["key"], m["mode"], m["bass_program"], m["vocal_program"]) for m in meta.values()]
    assert len(set(plans)) == SONGS
    spectra = []
    for song in _songs(dataset):
        x = _read(song / "mixture.wav").mean(axis=0)
        magnitude = np.abs(np.fft.rfft(x))[:66000]  # bins of 1/3 Hz up to 22 kHz
        spectrum = np.log10(magnitude.reshape(-1, 300).mean(axis=1) + 1e-9)  # 100 Hz bands
        spectra.append(spectrum - spectrum.mean())
    for i in range(SONGS):
        for j in range(i + 1, SONGS):
            assert np.abs(spectra[i] - spectra[j]).mean() > 0.05


def test_same_seed_is_bit_identical_and_other_seed_differs(dataset, tmp_path):
    again = make_synth_dataset(tmp_path / "again", songs=SONGS, seconds=SECONDS, seed=SEED)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = make_synth_dataset(tmp_path / "other", songs=SONGS, seconds=SECONDS, seed=SEED + 1)
    for song in _songs(dataset):
        a = _read(song / "mixture.wav")
        b = _read(other / song.parent.name / song.name / "mixture.wav")
        assert not np.array_equal(a, b)


def test_song_depends_only_on_seed_and_index(dataset):
    stems, info = synth.render_song(SEED, 0, seconds=SECONDS)
    first = _songs(dataset)[0]
    assert first.name.endswith("000")
    for stem in STEMS:
        written = _read(first / f"{stem}.wav", "float32")
        np.testing.assert_allclose(written, stems[stem], atol=1.0 / 32768)  # 16-bit rounding
    assert info["tempo_bpm"] == json.loads((dataset / "dataset.json").read_text())["tracks"][first.name]["tempo_bpm"]


def test_float_subtype_and_progress(tmp_path):
    seen = []
    root = make_synth_dataset(tmp_path / "f", songs=1, seconds=2.0, seed=0, subtype="FLOAT", progress=lambda *call: seen.append(call))
    assert seen == [(1, 1, "songs: synth_000")]
    song = root / "train" / "synth_000"
    assert sf.info(str(song / "mixture.wav")).subtype == "FLOAT"
    stems = [_read(song / f"{s}.wav", "float32") for s in STEMS]
    np.testing.assert_array_equal(_read(song / "mixture.wav", "float32"), stems[0] + stems[1] + stems[2] + stems[3])
    assert (root / "validation.txt").read_text() == "" and not any((root / "test").iterdir())


def test_split_counts_follow_musdb():
    assert split_counts(150, synth.MUSDB_TEST_FRACTION, synth.MUSDB_VALIDATION_FRACTION) == (100, 14, 50)
    for songs in range(3, 120):
        train, val, test = split_counts(songs, 1 / 3, 0.14)
        assert train + test == songs and test >= 1 and val >= 1 and train - val >= 1
        assert abs(test - songs / 3) <= 1.5 or test == songs - 2
    assert split_counts(1, 1 / 3, 0.14) == (1, 0, 0)
    assert split_counts(2, 1 / 3, 0.14) == (1, 0, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(songs=0), "songs"),
        (dict(songs=2.5), "songs"),
        (dict(seconds=1.0), "seconds"),
        (dict(seconds=float("nan")), "seconds"),
        (dict(seed=-1), "seed"),
        (dict(test_fraction=1.0), "test_fraction"),
        (dict(subtype="PCM_24"), "subtype"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    args = dict(songs=1, seconds=2.0, seed=0) | kwargs
    with pytest.raises(MixfxError, match=message) as err:
        make_synth_dataset(tmp_path / "out", **args)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_existing_output(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MixfxError, match="not a folder"):
        make_synth_dataset(blocker, songs=1, seconds=2.0, seed=0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(MixfxError, match="not empty"):
        make_synth_dataset(foreign, songs=1, seconds=2.0, seed=0)
    with pytest.raises(MixfxError, match="no dataset.json"):
        make_synth_dataset(foreign, songs=1, seconds=2.0, seed=0, overwrite=True)
    assert (foreign / "keep.txt").read_text() == "x"

    out = make_synth_dataset(tmp_path / "ds", songs=1, seconds=2.0, seed=0)
    make_synth_dataset(out, songs=1, seconds=2.0, seed=1, overwrite=True)
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(synth, "render_song", broken)
    with pytest.raises(RuntimeError):
        make_synth_dataset(out, songs=1, seconds=2.0, seed=2, overwrite=True)
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1  # old set intact
    with pytest.raises(RuntimeError):
        make_synth_dataset(tmp_path / "new", songs=1, seconds=2.0, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "file", "foreign"]  # nothing half-written
