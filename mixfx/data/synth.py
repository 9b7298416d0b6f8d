"""The built-in synthetic multitrack set: MUSDB18-HQ-like stems rendered from General MIDI.

Every command of the toolkit can run on this set without a download. Each song gets its own
tempo, key, mode, chord progression, grooves and instruments (:mod:`mixfx.data.synth_plan`), arranged
as General MIDI (:mod:`mixfx.data.synth_midi`);
each stem is rendered with the SoundFont that ``pretty_midi`` ships (``TimGM6mb.sf2``) by
``midirenderer`` (a self-contained synthesizer, no system library), resampled to the working
rate, given its own stereo placement, width and level, and the mixture is the exact sum of
the stems as written.

Layout (as MUSDB18-HQ)::

    out_dir/train/<song>/{drums,bass,other,vocals,mixture}.wav
    out_dir/test/<song>/{drums,bass,other,vocals,mixture}.wav
    out_dir/validation.txt   # train songs that form the validation split, one per line
    out_dir/dataset.json     # seed, sizes, generator version, per-song choices
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.synth_midi import arrange
from mixfx.data.synth_plan import plan_song
from mixfx.errors import MixfxError
from mixfx.fx.loudness import integrated_loudness
from mixfx.io.atomic import atomic_dir
from mixfx.io.audio import resample
from mixfx.io.paths import check_output_dir
from mixfx.progress import Progress, progress_reporter

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
MIN_SECONDS = 2.0
MUSDB_TEST_FRACTION = 50 / 150  # MUSDB18: 100 train (86 train + 14 validation) and 50 test songs
MUSDB_VALIDATION_FRACTION = 14 / 100
SUBTYPES = ("PCM_16", "FLOAT")
# Per-stem mixing ranges: loudness before the final gain (LUFS), pan (-1 left .. 1 right),
# stereo width (mid/side ratio of the rendered stem, 0 = mono).
STEM_LOUDNESS_LUFS = {"drums": (-22.0, -18.0), "bass": (-24.0, -19.0), "other": (-25.0, -19.0), "vocals": (-22.0, -17.0)}
STEM_PAN = {"drums": 0.15, "bass": 0.1, "other": 0.6, "vocals": 0.15}
STEM_WIDTH = {"drums": (0.6, 1.4), "bass": (0.0, 0.5), "other": (0.5, 1.6), "vocals": (0.0, 0.6)}
PEAK_DBFS = (-3.0, -1.0)
# BS.1770 K-weighting as (freq_hz, gain_db, q) of RBJ biquads, the parameters pyloudnorm fits.


def make_synth_dataset(
    out_dir: str | os.PathLike,
    *,
    songs: int,
    seconds: float,
    seed: int,
    sample_rate: int = SAMPLE_RATE,
    test_fraction: float = MUSDB_TEST_FRACTION,
    validation_fraction: float = MUSDB_VALIDATION_FRACTION,
    subtype: str = "PCM_16",
    overwrite: bool = False,
    progress: Progress = None,
) -> Path:
    """Render a synthetic MUSDB18-HQ-like multitrack set into ``out_dir``, atomically.

    The set is built in a temporary sibling folder and renamed at the end, so a failure
    leaves nothing half-written. Song ``i`` depends only on ``(seed, i)``, so a larger set
    with the same seed starts with the same songs.

    Args:
        out_dir: destination folder; must not exist or be empty, unless ``overwrite``.
        songs: number of songs (>= 1). From 3 songs on, train, validation and test each get
            at least one.
        seconds: length of every song in seconds (>= 2).
        seed: non-negative integer; the same seed gives bit-identical files.
        sample_rate: rate of the WAV files in Hz (the renderer runs at 48 kHz and is resampled).
        test_fraction: share of songs in ``test/`` (MUSDB18: 50 of 150).
        validation_fraction: share of the remaining (train) songs listed in
            ``validation.txt`` (MUSDB18: 14 of 100).
        subtype: ``"PCM_16"`` (as MUSDB18-HQ) or ``"FLOAT"``. Either way ``mixture.wav`` is the
            exact sample-wise sum of the four stem files.
        overwrite: replace an existing non-empty ``out_dir`` that holds a synthetic set
            (``dataset.json``).
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, songs, "songs: NAME")`` after each song.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        MixfxError: bad ``songs``, ``seconds``, ``seed``, ``sample_rate``, fractions or
            ``subtype``; ``out_dir`` is a file, lies under a file or a read-only folder, or is a
            non-empty folder without ``overwrite``.

    Example:
        >>> make_synth_dataset("data/synth", songs=50, seconds=30, seed=0)  # doctest: +SKIP
        PosixPath('data/synth')
    """
    out_dir = Path(out_dir)
    _check_args(out_dir, songs, seconds, seed, sample_rate, test_fraction, validation_fraction, subtype, overwrite)
    n_train, n_val, n_test = split_counts(songs, test_fraction, validation_fraction)
    width = max(3, len(str(songs - 1)))
    names = [f"synth_{i:0{width}d}" for i in range(songs)]
    train, test = names[:n_train], names[n_train:]
    validation = train[n_train - n_val:] if n_val else []
    if songs < 3:
        logger.warning("only %d song(s): train %d, validation %d, test %d", songs, n_train - n_val, n_val, n_test)
    meta = {
        "generator": "mixfx.data.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "songs": int(songs),
        "seconds": float(seconds),
        "sample_rate": int(sample_rate),
        "subtype": subtype,
        "soundfont": soundfont_path().name,
        "splits": {"train": [n for n in train if n not in validation], "validation": validation, "test": test},
        "tracks": {},
    }
    with atomic_dir(out_dir) as tmp, progress_reporter(progress, unit="song") as report:
        for i, name in enumerate(names):
            split = "train" if i < n_train else "test"
            stems, info = render_song(seed, i, seconds=seconds, sample_rate=sample_rate)
            _write_song(tmp / split / name, stems, sample_rate, subtype)
            meta["tracks"][name] = {"split": split, **info}
            logger.debug("%s: %s %s, %g bpm", name, info["key_name"], info["mode"], info["tempo_bpm"])
            report(i + 1, songs, f"songs: {name}")
        for split in ("train", "test"):
            (tmp / split).mkdir(exist_ok=True)
        (tmp / "validation.txt").write_text("".join(f"{n}\n" for n in validation), encoding="utf-8")
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %d synthetic songs of %g s to %s", songs, seconds, out_dir)
    return out_dir


def split_counts(songs: int, test_fraction: float, validation_fraction: float) -> tuple[int, int, int]:
    """Return ``(train, validation, test)`` song counts; validation songs are part of train.

    From 3 songs on, each split gets at least one song and training keeps at least one song
    outside validation. With 2 songs: one train, one test, no validation; with 1: train only.
    """
    if songs < 3:
        return (songs, 0, 0) if songs == 1 else (1, 0, 1)
    n_test = min(max(1, round(songs * test_fraction)), songs - 2)
    n_train = songs - n_test
    n_val = min(max(1, round(n_train * validation_fraction)), n_train - 1)
    return n_train, n_val, n_test


def render_song(seed: int, index: int, *, seconds: float, sample_rate: int = SAMPLE_RATE) -> tuple[dict[str, np.ndarray], dict]:
    """Render song ``index`` of the set drawn with ``seed``.

    Returns:
        ``(stems, info)``: ``stems`` maps each name in :data:`mixfx.STEMS` to a float32 array of
        shape ``(2, round(seconds * sample_rate))`` (already placed, levelled and scaled so that
        the mixture peaks at -3..-1 dBFS); ``info`` holds the song's choices (JSON-friendly).
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))
    plan = plan_song(rng, seconds)
    midis = arrange(plan, rng)
    frames = int(round(seconds * sample_rate))
    stems = {}
    for stem in STEMS:
        buf = io.BytesIO()
        midis[stem].write(buf)
        stems[stem] = render_midi(buf.getvalue(), sample_rate=sample_rate, frames=frames)
    mix_info = _mix(stems, rng, sample_rate)
    return stems, {**plan.to_dict(), **mix_info}


def render_midi(midi: bytes, *, sample_rate: int, frames: int) -> np.ndarray:
    """Render MIDI file bytes with the GM SoundFont: ``(2, frames)`` float32 at ``sample_rate``.

    The output is cut or zero-padded to exactly ``frames`` samples.
    """
    try:
        import midirenderer
    except ImportError:
        raise MixfxError("the synthetic dataset needs the midirenderer package: pip install midirenderer") from None

    wav = midirenderer.render_wave_from(_soundfont_bytes(), midi)
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    audio = audio.T
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    if rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    out = np.zeros((2, frames), dtype=np.float32)
    n = min(frames, audio.shape[1])
    out[:, :n] = audio[:2, :n]
    return out


def soundfont_path() -> Path:
    """The General-MIDI SoundFont shipped inside the ``pretty_midi`` package."""
    import pretty_midi

    path = Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise MixfxError(f"{path}: SoundFont not found (reinstall pretty_midi)")
    return path


@lru_cache(maxsize=1)
def _soundfont_bytes() -> bytes:
    return soundfont_path().read_bytes()


def _mix(stems: dict[str, np.ndarray], rng: np.random.Generator, sample_rate: int) -> dict:
    """Place, level and scale the stems in place; return the mixing choices."""
    loudness = integrated_loudness(torch.from_numpy(np.stack([stems[s] for s in STEMS])), sample_rate).tolist()
    info = {"stem_lufs": {}, "stem_pan": {}, "stem_width": {}}
    for k, stem in enumerate(STEMS):
        x = stems[stem]
        target = float(rng.uniform(*STEM_LOUDNESS_LUFS[stem]))
        pan = float(rng.uniform(-STEM_PAN[stem], STEM_PAN[stem]))
        width = float(rng.uniform(*STEM_WIDTH[stem]))
        gain = 10.0 ** ((target - loudness[k]) / 20.0) if math.isfinite(loudness[k]) else 1.0
        mid, side = 0.5 * (x[0] + x[1]), 0.5 * (x[0] - x[1]) * width
        theta = (pan + 1.0) * math.pi / 4.0  # constant-power pan law, unity gain at the centre
        left = (mid + side) * (gain * math.sqrt(2.0) * math.cos(theta))
        right = (mid - side) * (gain * math.sqrt(2.0) * math.sin(theta))
        stems[stem] = np.stack([left, right]).astype(np.float32)
        info["stem_lufs"][stem], info["stem_pan"][stem], info["stem_width"][stem] = target, pan, width
    peak = max(np.abs(sum(stems.values())).max(), *(np.abs(x).max() for x in stems.values()))
    peak_db = float(rng.uniform(*PEAK_DBFS))
    scale = 10.0 ** (peak_db / 20.0) / max(float(peak), 1e-9)
    for stem in STEMS:
        stems[stem] *= np.float32(scale)
    info["peak_dbfs"] = peak_db
    return info


def _write_song(folder: Path, stems: dict[str, np.ndarray], sample_rate: int, subtype: str) -> None:
    """Write the stems and their exact sum; PCM_16 stems are quantized before summing."""
    folder.mkdir(parents=True)
    if subtype == "PCM_16":
        ints = {s: np.round(stems[s] * 32768.0).astype(np.int32) for s in STEMS}
        ints["mixture"] = sum(ints[s] for s in STEMS)
        for name, x in ints.items():
            if np.abs(x).max() > 32767:  # cannot happen with the peak scaling of _mix
                raise MixfxError(f"{folder / name}.wav: sample overflow in 16-bit PCM")
            sf.write(str(folder / f"{name}.wav"), np.ascontiguousarray(x.T, dtype=np.int16), sample_rate, subtype="PCM_16")
    else:
        out = dict(stems)
        out["mixture"] = out["drums"] + out["bass"] + out["other"] + out["vocals"]
        for name, x in out.items():
            sf.write(str(folder / f"{name}.wav"), np.ascontiguousarray(x.T), sample_rate, subtype="FLOAT")


def _check_args(out_dir, songs, seconds, seed, sample_rate, test_fraction, validation_fraction, subtype, overwrite) -> None:
    if isinstance(songs, bool) or not isinstance(songs, (int, np.integer)) or songs < 1:
        raise MixfxError(f"songs: must be an integer >= 1, got {songs!r}")
    if not isinstance(seconds, (int, float, np.number)) or not math.isfinite(seconds) or seconds < MIN_SECONDS:
        raise MixfxError(f"seconds: must be a number >= {MIN_SECONDS:g}, got {seconds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MixfxError(f"seed: must be an integer >= 0, got {seed!r}")
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= sample_rate <= 192000:
        raise MixfxError(f"sample_rate: must be an integer in 8000..192000 Hz, got {sample_rate!r}")
    for name, value in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise MixfxError(f"{name}: must be in [0, 1), got {value!r}")
    if subtype not in SUBTYPES:
        raise MixfxError(f"subtype: must be one of {', '.join(SUBTYPES)}, got {subtype!r}")
    check_output_dir(out_dir)
    if out_dir.exists():
        if any(out_dir.iterdir()):
            if not overwrite:
                raise MixfxError(f"{out_dir}: folder exists and is not empty (use --overwrite / overwrite=True to replace it)")
            if not (out_dir / "dataset.json").is_file():
                raise MixfxError(f"{out_dir}: not a synthetic dataset (no dataset.json); refusing to replace it")
