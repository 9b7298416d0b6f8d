"""FX normalization of a dataset: the feature-averaging algorithm, normalizing songs, the dataset marker.

:func:`average_features` averages the per-stem features over a list of songs the way FxNorm
builds its features file: effect by effect, each feature measured on the stems already normalized
by the previous effects (so the compression feature is measured after EQ matching, the loudness
feature after EQ, DRC, imaging and panning). The panning target is 0.5 (every stem centred, as in
the official normalization); the measured L/R balance is only logged. :func:`normalize_song`
normalizes every stem of a song and sums them into the mixture. A dataset written by
``mixfx fx-normalize`` (:mod:`mixfx.pipelines.fx_normalize`) carries :data:`NORMALIZATION_RECORD`;
:func:`is_fx_normalized` checks for it.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.musdb import Song
from mixfx.errors import MixfxError
from mixfx.fxnorm.features import measure_feature
from mixfx.fxnorm.matching import EFFECTS, normalize_effect, normalize_stem, stem_rng
from mixfx.fxnorm.targets import FXNormFeatures, smooth_eq
from mixfx.io.audio import audio_info, load_audio
from mixfx.progress import Progress, progress_reporter

__all__ = ["CACHE_BYTES", "NORMALIZATION_RECORD", "average_features", "is_fx_normalized", "normalize_song"]

logger = logging.getLogger(__name__)

NORMALIZATION_RECORD = "fx_normalization.json"
"""Written at the root of every FX-normalized dataset; its presence marks the dataset as normalized."""

CACHE_BYTES = 2 * 1024**3
"""Keep the partly normalized training stems in memory when they fit in this many bytes
(float32); otherwise each pass recomputes the earlier normalization steps from the files."""


def is_fx_normalized(root: str | os.PathLike) -> bool:
    """Whether ``root`` is the output of ``mixfx fx-normalize`` (it carries :data:`NORMALIZATION_RECORD`)."""
    return (Path(root) / NORMALIZATION_RECORD).is_file()


def average_features(songs: Sequence[Song], *, stems: Sequence[str] = STEMS, seed: int = 0,
                     progress: Progress = None, source: str = "dataset") -> FXNormFeatures:
    """Per-stem FX-normalization targets averaged over ``songs``.

    Passes over the songs, as FxNorm does: the EQ curves on the stems as they are, the
    compression feature after EQ matching, the imager feature after EQ and DRC, the loudness
    after EQ, DRC, imaging and panning, each step using the averages found so far. EQ curves are
    averaged then Savitzky–Golay smoothed (and smoothed again at load, as the official code
    does). The panning target is 0.5. When the stems do not fit in :data:`CACHE_BYTES`, each
    pass recomputes the earlier steps from the files (slower, constant memory).

    Args:
        songs: the songs (e.g. :func:`mixfx.data.musdb.list_songs` of the training split).
        stems: stems to compute.
        seed: seed of the Haas step applied to near-mono stems before the later features
            (:func:`mixfx.fxnorm.matching.stem_rng` per song and stem).
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, "stems: PASS")`` after each stem of each of the 4 passes (``PASS``: its effect).
        source: how error messages name the songs (e.g. ``"<root> (split 'train')"``).

    Raises:
        MixfxError: unreadable audio, a stem silent (or without onsets) in every song.
    """
    frames = sum(audio_info(s.stem_path(stem))[0] for s in songs for stem in stems)
    cache: dict | None = {} if frames * 2 * 4 <= CACHE_BYTES else None
    passes = [e for e in EFFECTS if e != "panning"]  # the panning target is fixed (0.5)
    total = len(passes) * len(songs) * len(stems)
    targets: dict[str, dict] = {name: {} for name in EFFECTS}
    targets["panning"] = {stem: 0.5 for stem in stems}
    done = 0
    with progress_reporter(progress, unit="stem") as report:
        for effect in passes:
            k = EFFECTS.index(effect)
            measured = (effect, "panning") if effect == "imager" else (effect,)
            values: dict[str, dict[str, list]] = {m: {stem: [] for stem in stems} for m in measured}
            partial = _partial_features(targets, EFFECTS[:k], stems)
            for song in songs:
                for stem in stems:
                    x = _stem_at_step(song, stem, k, partial, cache, seed)
                    for m in measured:
                        value = measure_feature(x, m, SAMPLE_RATE)
                        if value is not None:
                            values[m][stem].append(value)
                    done += 1
                    report(done, total, f"stems: {effect} pass")
            for m in measured:
                for stem in stems:
                    targets[m][stem] = _average(m, stem, values[m][stem], source)
                logger.info("%s features: %s", m, {s: _short(targets[m][s]) for s in stems})
    return FXNormFeatures(**_partial_features(targets, EFFECTS, stems))


def normalize_song(song: Song, features: FXNormFeatures, *, seed: int = 0, effects: Sequence[str] = EFFECTS,
                   stems: Sequence[str] = STEMS, on_stem: Callable[[], None] | None = None) -> dict[str, torch.Tensor]:
    """Every stem of ``song`` FX-normalized (:func:`mixfx.fxnorm.matching.normalize_stem`), plus ``mixture``.

    The Haas step of stem ``s`` draws from ``stem_rng(seed, song.name, s)``; ``mixture`` is the sum of
    the normalized stems (shorter ones zero-padded, with a warning). ``on_stem`` is called after each stem.

    Returns:
        stem name → ``(2, T)`` float32, in ``stems`` order, then ``"mixture"``.
    """
    out = {}
    for stem in stems:
        x = load_audio(song.stem_path(stem))
        out[stem] = normalize_stem(x, stem, features, rng=stem_rng(seed, song.name, stem), effects=effects)
        if on_stem is not None:
            on_stem()
    out["mixture"] = _sum(list(out.values()), song)
    return out


# --------------------------------------------------------------------------------------- helpers


def _stem_at_step(song: Song, stem: str, k: int, partial: dict, cache: dict | None, seed: int) -> torch.Tensor:
    """The stem normalized by the first ``k`` steps of :data:`EFFECTS` (cached state reused)."""
    key = (song.folder, stem)
    level, x = cache.get(key, (0, None)) if cache is not None else (0, None)
    if x is None:
        x = load_audio(song.stem_path(stem))
    features = FXNormFeatures(**partial) if k > level else None
    for effect in EFFECTS[level:k]:
        # every pass replays the Haas draw from a fresh stream, so passes (and fx-normalize) agree
        x = normalize_effect(x, stem, effect, features, rng=stem_rng(seed, song.name, stem))
    if cache is not None:
        cache[key] = (k, x)
    return x


def _partial_features(targets: dict, known: Sequence[str], stems: Sequence[str]) -> dict:
    """Feature tables with the ``known`` effects' averages and neutral placeholders for the others."""
    bins = FXNormFeatures.__dataclass_fields__["n_fft"].default // 2 + 1
    neutral = {"eq": np.ones(bins), "compression": (0.0, 0.0), "imager": 0.5, "panning": 0.5, "loudness": -23.0}
    return {name: {s: targets[name][s] if name in known else neutral[name] for s in stems} for name in EFFECTS}


def _average(effect: str, stem: str, values: list, source: str):
    if not values:
        raise MixfxError(f"{source}: every {stem} stem is silent (or has no onsets for {effect})")
    if effect == "panning":  # symmetric by nature: centre every stem, as the official code does
        logger.info("%s: mean left-energy fraction %.4f over %d songs (after EQ and DRC); target 0.5",
                    stem, float(np.mean(values)), len(values))
        return 0.5
    if effect == "eq":
        return smooth_eq(np.mean(np.stack(values), axis=0), stem)
    if effect == "compression":
        return tuple(float(v) for v in np.mean(np.asarray(values, dtype=np.float64), axis=0))
    return float(np.mean(values))


def _sum(stems: list[torch.Tensor], song: Song) -> torch.Tensor:
    length = max(x.shape[-1] for x in stems)
    if any(x.shape[-1] != length for x in stems):
        logger.warning("%s: stems differ in length; the mixture pads the shorter ones with zeros", song.folder)
    out = torch.zeros(2, length)
    for x in stems:
        out[:, : x.shape[-1]] += x
    return out


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"curve({value.shape[0]})"
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:.3f}" for v in value) + ")"
    return f"{value:.4f}" if math.isfinite(value) else str(value)
