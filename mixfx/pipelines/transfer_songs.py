"""Songs for ``mixfx transfer``: stem folders, mixture files, folders of songs, matching references.

A *song* is a folder with the four stem files (``drums``, ``bass``, ``other``, ``vocals``; .wav,
.flac, …), a folder with only a ``mixture`` file, or an audio file (a mixture). A *folder of songs*
holds such song folders and / or mixture files. Mixtures are separated on use
(:mod:`mixfx.models.separation`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Mapping

import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.errors import MixfxError
from mixfx.io.audio import AUDIO_SUFFIX_TEXT, AUDIO_SUFFIXES, audio_info, load_audio
from mixfx.progress import Progress

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SongSource:
    """One song: a folder with the four stem files, or a mixture file (separated on use)."""

    name: str
    stems: Mapping[str, Path] | None = None
    mixture: Path | None = None

    @property
    def path(self) -> Path:
        return self.mixture if self.stems is None else next(iter(self.stems.values())).parent

    def seconds(self) -> float:
        frames, rate, _ = audio_info(self.mixture if self.stems is None else self.stems[STEMS[0]])
        return frames / rate


def _find(folder: Path, name: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def as_song(path: str | os.PathLike) -> SongSource | None:
    """``path`` as one song, or ``None`` when it is a folder of songs.

    A folder with all four stem files (``drums``, ``bass``, ``other``, ``vocals``; .wav, .flac, …)
    is a stem song (a ``mixture`` file beside them is ignored); a folder with only a ``mixture``
    file, or an audio file, is a mixture song.

    Raises:
        MixfxError: missing path, or a folder with some but not all stem files and no mixture.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise MixfxError(f"{path}: not an audio file (expected {AUDIO_SUFFIX_TEXT})")
        return SongSource(path.stem, mixture=path)
    if not path.is_dir():
        raise MixfxError(f"{path}: no such file or folder")
    stems = {s: p for s in STEMS if (p := _find(path, s)) is not None}
    if len(stems) == len(STEMS):
        return SongSource(path.name, stems=stems)
    mixture = _find(path, "mixture")
    if mixture is not None:
        return SongSource(path.name, mixture=mixture)
    if stems:
        missing = [s for s in STEMS if s not in stems]
        raise MixfxError(f"{path}: missing stem(s) {', '.join(missing)}; a song folder needs "
                         f"{', '.join(STEMS)} ({AUDIO_SUFFIX_TEXT}) or a mixture file")
    return None


def list_songs(path: str | os.PathLike) -> list[SongSource]:
    """The songs at ``path``: one song (see :func:`as_song`), or every song folder / audio file inside it.

    Raises:
        MixfxError: nothing usable, a song folder with missing stems, duplicate song names.
    """
    path = Path(path)
    song = as_song(path)
    if song is not None:
        return [song]
    songs: dict[str, SongSource] = {}
    for child in sorted(p for p in path.iterdir() if not p.name.startswith(".")):
        item = as_song(child) if child.is_dir() or child.suffix.lower() in AUDIO_SUFFIXES else None
        if item is None:
            continue
        if item.name in songs:
            raise MixfxError(f"{path}: two songs named {item.name!r} ({songs[item.name].path.name}, {child.name})")
        songs[item.name] = item
    if not songs:
        raise MixfxError(f"{path}: no songs found (expected stem files {', '.join(STEMS)} ({AUDIO_SUFFIX_TEXT}), a mixture file, "
                         f"or a folder of such song folders)")
    return list(songs.values())


def match_references(reference: str | os.PathLike, songs: list[SongSource]) -> dict[str, SongSource]:
    """Reference per input song: one song for all, or the same-named song of a folder of songs.

    Raises:
        MixfxError: a folder of references lacking some input song's name.
    """
    single = as_song(reference)
    if single is not None:
        return {s.name: single for s in songs}
    refs = {r.name: r for r in list_songs(reference)}
    missing = [s.name for s in songs if s.name not in refs]
    if missing:
        raise MixfxError(f"{reference}: no reference for song(s) {', '.join(missing[:5])}; a folder of references "
                         f"needs one song folder per input song, with the same names (or give one reference)")
    return {s.name: refs[s.name] for s in songs}


def load_stems(song: SongSource, *, separator=None, min_seconds: float = 1.0,
               progress: Progress = False) -> dict[str, torch.Tensor]:
    """Read a song's stems ``{stem: (2, T)}`` at 44.1 kHz (separating a mixture with ``separator``).

    Stems of unequal length are zero-padded to the longest (with a warning). ``progress`` goes to the
    separator (:class:`~mixfx.progress.ProgressFn` ``(done, total, "windows")``).

    Raises:
        MixfxError: unreadable / too short audio, or a mixture without a separator.
    """
    if song.stems is None:
        if separator is None:
            raise MixfxError(f"{song.mixture}: is a mixture: pass --separator-weights PATH (a torchaudio HDemucs "
                             f"state_dict) or give a stem folder ({', '.join(STEMS)}; {AUDIO_SUFFIX_TEXT})")
        mixture = load_audio(song.mixture, sample_rate=SAMPLE_RATE, min_seconds=min_seconds)
        log.info("%s: separating %.1f s with Hybrid Demucs", song.mixture, mixture.shape[-1] / SAMPLE_RATE)
        stems = separator.separate(mixture, SAMPLE_RATE, progress=progress)
        return {s: stems[s] for s in STEMS}
    stems = {s: load_audio(p, sample_rate=SAMPLE_RATE, min_seconds=min_seconds) for s, p in song.stems.items()}
    length = max(x.shape[-1] for x in stems.values())
    if any(x.shape[-1] != length for x in stems.values()):
        log.warning("%s: stems differ in length (%s samples); zero-padding to %d", song.path,
                    ", ".join(str(x.shape[-1]) for x in stems.values()), length)
        stems = {s: torch.nn.functional.pad(x, (0, length - x.shape[-1])) for s, x in stems.items()}
    return stems
