"""``mixfx fx-features`` and ``mixfx fx-normalize``: FX normalization of a whole dataset.

``compute_features`` averages the per-stem features over the training split the way FxNorm
builds its features file: effect by effect, each feature measured on the stems already
normalized by the previous effects (so the compression feature is measured after EQ matching,
the loudness feature after EQ, DRC, imaging and panning). The panning target is 0.5 (every stem
centred, as in the official normalization); the measured L/R balance is only logged.
``normalize_dataset`` then writes a new dataset in the MUSDB18-HQ layout with every stem
normalized and ``mixture.wav`` the sum of the normalized stems.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.musdb import Song, list_songs
from mixfx.errors import MixfxError
from mixfx.fx.normalize import EFFECTS, normalize_effect, normalize_stem
from mixfx.fx.normalize_features import measure_feature
from mixfx.fx.normalize_io import FXNormFeatures, load_features, smooth_eq
from mixfx.io.atomic import atomic_dir
from mixfx.io.audio import audio_info, load_audio, save_audio

logger = logging.getLogger(__name__)

NORMALIZATION_RECORD = "fx_normalization.json"
"""Written at the root of every FX-normalized dataset; its presence marks the dataset as normalized."""


def is_fx_normalized(root: str | os.PathLike) -> bool:
    """Whether ``root`` is the output of :func:`normalize_dataset` (it carries :data:`NORMALIZATION_RECORD`)."""
    return (Path(root) / NORMALIZATION_RECORD).is_file()


CACHE_BYTES = 2 * 1024**3
"""Keep the partly normalized training stems in memory when they fit in this many bytes
(float32); otherwise each pass recomputes the earlier normalization steps from the files."""

_FOLDER_SPLITS = {"train": "train+valid", "valid": "valid", "test": "test", "train+valid": "train+valid"}
_ROOT_FILES = ("validation.txt", "dataset.json")
_SUBTYPES = ("FLOAT", "DOUBLE", "PCM_16", "PCM_24", "PCM_32")


def stem_rng(seed: int, song: str, stem: str) -> np.random.Generator:
    """The generator of one stem's stochastic step (Haas), independent of processing order."""
    return np.random.default_rng([int(seed), zlib.crc32(song.encode("utf-8")), zlib.crc32(stem.encode("utf-8"))])


def compute_features(
    dataset_root: str | os.PathLike,
    out_npz: str | os.PathLike,
    *,
    split: str = "train",
    seed: int = 0,
    stems: Sequence[str] = STEMS,
    progress: Callable | None = None,
) -> Path:
    """Average per-stem FX features over a split and save them to ``out_npz``.

    Passes over the split, as FxNorm does: the EQ curves on the stems as they are, the
    compression feature after EQ matching, the imager feature after EQ and DRC, the loudness
    after EQ, DRC, imaging and panning, each step using the averages found so far. EQ curves are
    averaged then Savitzky–Golay smoothed (and smoothed again at load, as the official code
    does). The panning target is 0.5. When the split does not fit in :data:`CACHE_BYTES`, each
    pass recomputes the earlier steps from the files (slower, constant memory).

    Args:
        dataset_root: dataset in the MUSDB18-HQ layout.
        out_npz: output ``.npz`` (written atomically); load it with
            :func:`mixfx.fx.normalize_io.load_features`.
        split: ``train`` (the official 86 songs), ``valid``, ``test`` or ``train+valid``.
        seed: seed of the Haas step applied to near-mono stems before the later features.
        stems: stems to compute.
        progress: called as ``progress(1, total=n)`` after each stem of each of the 4 passes.

    Returns:
        ``out_npz`` as a Path.

    Raises:
        MixfxError: bad dataset or split, unreadable audio, a stem silent in every song.
    """
    songs = list_songs(dataset_root, split, stems=tuple(stems))
    frames = sum(audio_info(s.stem_path(stem))[0] for s in songs for stem in stems)
    cache: dict | None = {} if frames * 2 * 4 <= CACHE_BYTES else None
    passes = [e for e in EFFECTS if e != "panning"]  # the panning target is fixed (0.5)
    total = len(passes) * len(songs) * len(stems)
    targets: dict[str, dict] = {name: {} for name in EFFECTS}
    targets["panning"] = {stem: 0.5 for stem in stems}
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
                if progress is not None:
                    progress(1, total=total)
        for m in measured:
            for stem in stems:
                targets[m][stem] = _average(m, stem, values[m][stem], dataset_root, split)
            logger.info("%s features: %s", m, {s: _short(targets[m][s]) for s in stems})
    return FXNormFeatures(**_partial_features(targets, EFFECTS, stems)).save(out_npz)


def normalize_dataset(
    dataset_root: str | os.PathLike,
    features_path: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    splits: Sequence[str] = ("train", "test"),
    seed: int = 0,
    effects: Sequence[str] = EFFECTS,
    subtype: str = "FLOAT",
    overwrite: bool = False,
    progress: Callable | None = None,
) -> Path:
    """Write an FX-normalized copy of a dataset (same layout), atomically.

    Every stem is normalized with :func:`mixfx.fx.normalize.normalize_stem`; ``mixture.wav`` is
    the sum of the normalized stems; ``validation.txt`` and ``dataset.json`` at the root are
    copied, and ``fx_normalization.json`` records the features file, seed and order.

    Args:
        dataset_root: source dataset (MUSDB18-HQ layout).
        features_path: our ``.npz`` (``mixfx fx-features``) or the official ``.npy``.
        out_root: destination folder, built in a temporary sibling and renamed at the end.
        splits: dataset folders to normalize: ``train`` (the whole ``train/`` folder, validation
            songs included), ``test``; ``valid`` or ``train+valid`` select as in
            :func:`mixfx.data.musdb.list_songs`.
        seed: seed of the Haas step (per song and stem, so the result does not depend on order).
        effects: normalization order.
        subtype: WAV subtype of the output (``FLOAT`` keeps levels above 0 dBFS; ``PCM_16`` clips).
        overwrite: replace an existing non-empty ``out_root``.
        progress: called as ``progress(1, total=n)`` after each stem.

    Returns:
        ``out_root`` as a Path.

    Raises:
        MixfxError: bad features file, dataset, split or output folder; unreadable audio.
    """
    root, out = Path(dataset_root).resolve(), Path(out_root).resolve()
    features = load_features(features_path)
    missing = [s for s in STEMS if s not in features.stems]
    if missing:
        raise MixfxError(f"{features_path}: features lack stem(s) {', '.join(missing)}")
    if out == root or root in out.parents or out in root.parents:
        raise MixfxError(f"{out_root}: output folder must be outside the dataset folder {dataset_root} and not contain it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise MixfxError(f"{out_root}: output exists and is not an empty folder (use overwrite)")
    unknown = [e for e in effects if e not in EFFECTS]
    if unknown:
        raise MixfxError(f"unknown FX normalization step(s) {', '.join(unknown)}; expected {', '.join(EFFECTS)}")
    if subtype not in _SUBTYPES:
        raise MixfxError(f"subtype: expected one of {', '.join(_SUBTYPES)}, got {subtype!r}")
    bad = [s for s in splits if s not in _FOLDER_SPLITS]
    if bad:
        raise MixfxError(f"unknown split(s) {', '.join(bad)}; expected {', '.join(_FOLDER_SPLITS)}")
    songs = {}
    for split in splits:
        folder = root / ("test" if split == "test" else "train")
        if not folder.is_dir() or not any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()):
            logger.warning("%s: no songs in %s/, skipping split %r", root, folder.name, split)
            continue
        songs.update((s.folder, s) for s in list_songs(root, _FOLDER_SPLITS[split]))
    if not songs:
        raise MixfxError(f"{dataset_root}: no songs in split(s) {', '.join(splits)}")
    total = len(songs) * len(STEMS)
    with atomic_dir(out) as tmp:
        for song in songs.values():
            folder = tmp / song.folder.parent.name / song.name
            outputs = []
            for stem in STEMS:
                x = load_audio(song.stem_path(stem))
                y = normalize_stem(x, stem, features, rng=stem_rng(seed, song.name, stem), effects=effects)
                save_audio(folder / f"{stem}.wav", y, SAMPLE_RATE, subtype=subtype)
                outputs.append(y)
                if progress is not None:
                    progress(1, total=total)
            save_audio(folder / "mixture.wav", _sum(outputs, song), SAMPLE_RATE, subtype=subtype)
        for name in ("train", "test"):
            (tmp / name).mkdir(exist_ok=True)
        for name in _ROOT_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, tmp / name)
        record = {"features": str(Path(features_path).resolve()), "seed": int(seed), "effects": list(effects),
                  "splits": list(splits), "songs": len(songs), "subtype": subtype}
        (tmp / NORMALIZATION_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    logger.info("FX-normalized %d songs into %s", len(songs), out)
    return Path(out_root)


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


def _average(effect: str, stem: str, values: list, root, split: str):
    if not values:
        raise MixfxError(f"{root}: every {stem} stem of split {split!r} is silent (or has no onsets for {effect})")
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
