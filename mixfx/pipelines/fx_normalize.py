"""``mixfx fx-features`` and ``mixfx fx-normalize``: FX normalization of a whole dataset, file side.

The algorithms are in :mod:`mixfx.fxnorm` (:func:`mixfx.fxnorm.dataset.average_features`,
:func:`mixfx.fxnorm.dataset.normalize_song`); this module checks the arguments, lists the songs
and writes the features file or the normalized dataset (MUSDB18-HQ layout, every stem
normalized, ``mixture.wav`` the sum of the normalized stems) atomically.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.musdb import list_songs
from mixfx.errors import MixfxError
from mixfx.io.paths import check_output_dir, check_output_file
from mixfx.fxnorm.dataset import NORMALIZATION_RECORD, average_features, is_fx_normalized, normalize_song  # noqa: F401 (is_fx_normalized: re-exported)
from mixfx.fxnorm.matching import EFFECTS
from mixfx.fxnorm.targets import load_features
from mixfx.io.atomic import atomic_dir
from mixfx.io.audio import save_audio
from mixfx.progress import Progress, progress_reporter

logger = logging.getLogger(__name__)

_FOLDER_SPLITS = {"train": "train+valid", "valid": "valid", "test": "test", "train+valid": "train+valid"}
_ROOT_FILES = ("validation.txt", "dataset.json")
_SUBTYPES = ("FLOAT", "DOUBLE", "PCM_16", "PCM_24", "PCM_32")


def compute_features(
    dataset_root: str | os.PathLike,
    out_npz: str | os.PathLike,
    *,
    split: str = "train",
    seed: int = 0,
    stems: Sequence[str] = STEMS,
    progress: Progress = None,
) -> Path:
    """Average per-stem FX features over a split and save them to ``out_npz``.

    The averaging is :func:`mixfx.fxnorm.dataset.average_features` (effect by effect, each feature
    measured after the earlier steps, as FxNorm does; panning target 0.5).

    Args:
        dataset_root: dataset in the MUSDB18-HQ layout.
        out_npz: output ``.npz`` (written atomically); load it with
            :func:`mixfx.fxnorm.targets.load_features`.
        split: ``train`` (the official 86 songs), ``valid``, ``test`` or ``train+valid``.
        seed: seed of the Haas step applied to near-mono stems before the later features.
        stems: stems to compute.
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, "stems: PASS")`` after each stem of each of the 4 passes.

    Returns:
        ``out_npz`` as a Path.

    Raises:
        MixfxError: bad dataset or split, unreadable audio, a stem silent in every song.
    """
    out_npz = check_output_file(out_npz, option="--out")
    songs = list_songs(dataset_root, split, stems=tuple(stems))
    features = average_features(songs, stems=stems, seed=seed, progress=progress, source=f"{dataset_root} (split {split!r})")
    return features.save(out_npz)


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
    progress: Progress = None,
) -> Path:
    """Write an FX-normalized copy of a dataset (same layout), atomically.

    Every song goes through :func:`mixfx.fxnorm.dataset.normalize_song` (``mixture.wav`` is the
    sum of the normalized stems); ``validation.txt`` and ``dataset.json`` at the root are
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
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, "stems: SONG")`` after each stem.

    Returns:
        ``out_root`` as a Path.

    Raises:
        MixfxError: bad features file, dataset, split or output folder; unreadable audio.
    """
    check_output_dir(out_root, option="--out", inputs=[dataset_root])
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
    done = itertools.count(1)
    with atomic_dir(out) as tmp, progress_reporter(progress, unit="stem") as report:
        for song in songs.values():
            folder = tmp / song.folder.parent.name / song.name
            on_stem = lambda: report(next(done), total, f"stems: {song.name}")  # noqa: E731 (called within this song)
            for name, y in normalize_song(song, features, seed=seed, effects=effects, on_stem=on_stem).items():
                save_audio(folder / f"{name}.wav", y, SAMPLE_RATE, subtype=subtype)
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
