"""MUSDB18(-HQ) folder layout: song listing, standard splits, silence-aware random segments.

Layout: ``<root>/train/<song>/{drums,bass,other,vocals,mixture}.wav`` and ``<root>/test/<song>/...``.
Splits: ``train`` (86 songs of MUSDB18 ``train/`` minus the 14 official validation songs),
``valid`` (those 14), ``test`` (50 songs of ``test/``). A dataset whose ``train/`` holds none of
the official validation names (e.g. the built-in synthetic set) lists its validation songs in
``<root>/validation.txt``, one name per line.

Silence removal: every stem gets a frame-level activity map (RMS per 0.1 s frame above
``silence_threshold_db``); segments are drawn only where the stem is active over at least
``min_active`` of the segment, the equivalent of sampling from the official silence-trimmed,
concatenated stems without rewriting the dataset. A stem that is digital silence in every song of
a split can never be drawn, so :class:`MultitrackSegments` refuses it when it is built (before a
trainer creates its run folder); see :func:`check_stems_drawable`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.errors import MixfxError
from mixfx.io.audio import audio_info, is_digital_silence, load_audio

logger = logging.getLogger(__name__)

MUSDB_VALIDATION = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
SPLITS = ("train", "valid", "test", "train+valid")


@dataclass(frozen=True)
class Song:
    """One song folder of the dataset."""

    name: str
    split: str
    folder: Path

    def stem_path(self, stem: str) -> Path:
        return self.folder / f"{stem}.wav"


def validation_names(root: str | os.PathLike) -> tuple[str, ...]:
    """The validation song names of a dataset: ``validation.txt`` if present, else the official 14."""
    listed = Path(root) / "validation.txt"
    if listed.is_file():
        return tuple(line.strip() for line in listed.read_text().splitlines() if line.strip())
    return MUSDB_VALIDATION


def list_songs(root: str | os.PathLike, split: str, *, stems: tuple[str, ...] = STEMS) -> list[Song]:
    """List the songs of a split, checking that each song folder has every stem file.

    Raises:
        MixfxError: unknown split, missing split folder, empty split, or a song missing a stem.
    """
    root = Path(root)
    if split not in SPLITS:
        raise MixfxError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    folder = root / ("test" if split == "test" else "train")
    if not folder.is_dir():
        raise MixfxError(f"{root}: dataset has no {folder.name}/ folder (expected the MUSDB18-HQ layout)")
    valid = set(validation_names(root))
    songs = []
    for song_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if split == "train" and song_dir.name in valid:
            continue
        if split == "valid" and song_dir.name not in valid:
            continue
        for stem in stems:
            if not (song_dir / f"{stem}.wav").is_file():
                raise MixfxError(f"{song_dir}: missing {stem}.wav")
        songs.append(Song(song_dir.name, split, song_dir))
    if not songs:
        raise MixfxError(f"{root}: split {split!r} holds no songs")
    return songs


def check_stems_drawable(songs: list[Song], stems: tuple[str, ...], split: str) -> None:
    """Refuse a stem that is digital silence (all samples zero) in every song of a split.

    Rule: segments are drawn only where a stem is active, so a stem file of zeros is never drawn.
    When that holds for every song of the split, no segment of that stem can ever be drawn (a
    trainer would fail at its first batch or validation): :class:`MixfxError` naming the file.
    When it holds for some songs only, those songs are skipped for that stem, as any silent
    stretch is (a song may be instrumental), and one warning names the files.

    Raises:
        MixfxError: a stem silent in every song, or an unreadable stem file.
    """
    for stem in stems:
        silent = [s.stem_path(stem) for s in songs if is_digital_silence(s.stem_path(stem))]
        if silent and len(silent) == len(songs):
            others = f" (as in the {len(silent) - 1} other song(s))" if len(silent) > 1 else ""
            raise MixfxError(f"{silent[0]}: silent {stem} stem (all samples are zero){others}; split {split!r} "
                             f"has no {stem} audio to draw segments from")
        if silent:
            logger.warning("silent %s stem (never drawn) in %d of %d song(s) of split %r: %s", stem, len(silent),
                           len(songs), split, ", ".join(str(p) for p in silent))


def frame_activity(x: torch.Tensor, sample_rate: int, *, frame_seconds: float = 0.1, threshold_db: float = -60.0) -> np.ndarray:
    """Boolean activity per frame: RMS (both channels) above ``threshold_db`` dBFS. ``x`` is ``(2, T)``."""
    hop = max(1, int(frame_seconds * sample_rate))
    n = x.shape[-1] // hop
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = x[:, : n * hop].reshape(x.shape[0], n, hop)
    power = frames.double().square().mean(dim=(0, 2))
    return (10 * torch.log10(power.clamp_min(1e-20)) > threshold_db).numpy()


def remove_silence(x: torch.Tensor, sample_rate: int, *, threshold_db: float = -60.0, frame_seconds: float = 0.1) -> torch.Tensor:
    """Drop the silent frames of ``(2, T)`` audio and concatenate the rest (the official trimming)."""
    hop = max(1, int(frame_seconds * sample_rate))
    active = frame_activity(x, sample_rate, frame_seconds=frame_seconds, threshold_db=threshold_db)
    keep = np.repeat(active, hop)
    tail = x.shape[-1] - keep.size
    keep = np.concatenate([keep, np.full(tail, bool(active[-1]) if active.size else True)])
    return x[:, torch.from_numpy(keep)]


@dataclass
class MultitrackSegments:
    """Random stem segments of one split, sampled away from silence, read lazily from disk.

    Args:
        root: dataset folder.
        split: ``train``, ``valid``, ``test`` or ``train+valid``.
        stems: stems to index.
        silence_threshold_db: frames under this RMS are silent; ``None`` disables silence removal
            (the test split is used as it is).
        min_active: share of a segment's frames that must be active.
        sample_rate: working rate; files at other rates are resampled on read.

    Raises:
        MixfxError: at construction, a bad dataset or split (:func:`list_songs`) or, with silence
            removal, a stem that is silent in every song of the split (:func:`check_stems_drawable`).

    Example:
        >>> data = MultitrackSegments("synth", "train")  # doctest: +SKIP
        >>> x = data.sample("vocals", 441000, generator=torch.Generator().manual_seed(0))
    """

    root: str | os.PathLike
    split: str
    stems: tuple[str, ...] = STEMS
    silence_threshold_db: float | None = -60.0
    min_active: float = 0.8
    sample_rate: int = SAMPLE_RATE
    frame_seconds: float = 0.1
    songs: list[Song] = field(init=False)
    _activity: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.songs = list_songs(self.root, self.split, stems=self.stems)
        if self.silence_threshold_db is not None:  # without silence removal every stem is used as it is
            check_stems_drawable(self.songs, self.stems, self.split)
        self._hop = int(self.frame_seconds * self.sample_rate)

    def activity(self, song: int, stem: str) -> np.ndarray:
        """Frame activity of one stem (computed on first use, then cached)."""
        key = (song, stem)
        if key not in self._activity:
            x = load_audio(self.songs[song].stem_path(stem), sample_rate=self.sample_rate)
            if self.silence_threshold_db is None:
                act = np.ones(x.shape[-1] // self._hop, dtype=bool)
            else:
                act = frame_activity(x, self.sample_rate, frame_seconds=self.frame_seconds, threshold_db=self.silence_threshold_db)
            self._activity[key] = act
        return self._activity[key]

    def valid_starts(self, song: int, stem: str, samples: int) -> np.ndarray:
        """Frame indices where a segment of ``samples`` may start."""
        act = self.activity(song, stem)
        width = int(np.ceil(samples / self._hop))
        if act.size < width:
            return np.zeros(0, dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum(act)])
        share = (cum[width:] - cum[:-width]) / width
        return np.nonzero(share >= self.min_active)[0]

    def read(self, song: int, stem: str, start: int, samples: int) -> torch.Tensor:
        """Read ``samples`` at the working rate from ``start`` (in working-rate samples); zero-padded at the end."""
        path = self.songs[song].stem_path(stem)
        _, file_rate, _ = audio_info(path)
        ratio = file_rate / self.sample_rate
        x = load_audio(path, sample_rate=self.sample_rate, start=int(start * ratio), frames=int(np.ceil(samples * ratio)) + 1)
        x = x[:, :samples]
        if x.shape[-1] < samples:
            x = torch.nn.functional.pad(x, (0, samples - x.shape[-1]))
        return x

    def sample(self, stem: str, samples: int, *, generator: torch.Generator, song: int | None = None) -> tuple[torch.Tensor, int, int]:
        """One random non-silent segment of ``stem``: returns ``(audio (2, samples), song index, start)``.

        Raises:
            MixfxError: no song of the split has ``samples`` of active audio for this stem.
        """
        order = [song] if song is not None else torch.randperm(len(self.songs), generator=generator).tolist()
        for s in order:
            starts = self.valid_starts(s, stem, samples)
            if starts.size:
                i = int(torch.randint(starts.size, (1,), generator=generator))
                start = int(starts[i]) * self._hop
                return self.read(s, stem, start, samples), s, start
        where = self.songs[order[0]].name if song is not None else f"split {self.split!r}"
        raise MixfxError(
            f"{self.root}: {where} has no {samples / self.sample_rate:.1f} s of non-silent {stem} "
            f"(threshold {self.silence_threshold_db} dB)"
        )

    def sample_pair(self, stem: str, samples: int, *, generator: torch.Generator, song: int | None = None):
        """Two different segments of the same song (non-overlapping when the song is long enough).

        Returns ``(a, b, song index)``; ``a`` and ``b`` are ``(2, samples)``.
        """
        a, s, start_a = self.sample(stem, samples, generator=generator, song=song)
        starts = self.valid_starts(s, stem, samples) * self._hop
        far = starts[np.abs(starts - start_a) >= samples]
        pool = far if far.size else starts[starts != start_a]
        if not pool.size:
            pool = starts
        start_b = int(pool[int(torch.randint(pool.size, (1,), generator=generator))])
        return a, self.read(s, stem, start_b, samples), s

