"""Representations for ``mixeval disentangle`` and their on-disk cache.

A :class:`Representation` is anything that turns the evaluation items into codes: a trained
FXencoder checkpoint, a randomly initialised FXencoder, the hand-crafted features, pure noise or
the factors themselves (the ideal reference). Each has a ``key`` that identifies it: the SHA-256 of
the checkpoint file, or a hash of the baseline's settings.

:class:`Cache` stores embeddings as ``embeddings/<rep key>/<set key>.npy`` (``(kinds, items, dim)``
float32, written atomically) and metric results as JSON, so a second run with the same encoders
and item sets neither renders audio nor calls an encoder, and skips the finished metrics.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from mixeval.baselines import HandcraftedFeatures, random_encoder
from mixeval.errors import MixevalError
from mixfx.io.atomic import atomic_path, atomic_write
from mixfx.io.hashing import file_sha256, json_sha256
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.models.loading import load_model_and_metadata

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINES", "Cache", "Representation", "baseline_representations", "build_representations",
    "embed_batch", "encoder_representation",
]

BASELINES = ("random", "mfcc")
"""Optional baselines: a random-init FXencoder and the hand-crafted features (noise is always shown)."""


@dataclass
class Representation:
    """One row of Table 1.

    Attributes:
        label: display name.
        type: ``encoder``, ``random``, ``handcrafted``, ``noise`` or ``ideal``.
        key: cache key (checkpoint hash or settings hash).
        dim: code size (0 for ``ideal``: the number of factors).
        module: ``(B, 2, T) → (B, dim)`` for the types that embed audio, else None.
        source: checkpoint path or a description.
    """

    label: str
    type: str
    key: str
    dim: int
    module: nn.Module | None = None
    source: str = ""

    @property
    def embeds(self) -> bool:
        return self.module is not None

    def to_dict(self) -> dict:
        return {"label": self.label, "type": self.type, "key": self.key, "dim": self.dim, "source": self.source}


def encoder_representation(path: str | os.PathLike, label: str | None = None) -> Representation:
    """An FXencoder checkpoint (any layout :mod:`mixfx.models.loading` reads) as a representation.

    The label is ``label``, else the checkpoint's ``extra["label"]`` (set by ``mixfx train-encoder``),
    else the file name without suffix; the cache key is ``"encoder:" +`` the file's SHA-256.

    Raises:
        MixfxError: missing, unreadable or corrupt file, a MixFXcloner checkpoint, or weights that
            do not fit the stored architecture (one line each).
    """
    path = Path(path)
    loaded = load_model_and_metadata(path, kind="fxencoder")
    model = cast(FXEncoder, loaded.model)
    return Representation(label or loaded.label or path.stem, "encoder", "encoder:" + file_sha256(path),
                          model.dim, model, str(path))


def baseline_representations(
    names, *, sample_rate: int, encoder_config: FXEncoderConfig | None, random_seed: int = 0
) -> list[Representation]:
    """The optional baselines ``names`` (subset of :data:`BASELINES`), in that order.

    The random-init FXencoder uses ``encoder_config`` (the first encoder's architecture, so it is
    comparable; default the paper's).

    Raises:
        MixevalError: an unknown name.
    """
    out = []
    for name in names:
        if name == "random":
            cfg = encoder_config or FXEncoderConfig.paper()
            model = random_encoder(cfg, seed=random_seed)
            out.append(Representation("random-init FXencoder", "random",
                                      "random:" + json_sha256({"config": cfg.to_dict(), "seed": random_seed}), model.dim, model,
                                      f"FXEncoder({cfg.channels[-1]}-d), seed {random_seed}"))
        elif name == "mfcc":
            feats = HandcraftedFeatures(sample_rate)
            out.append(Representation("hand-crafted features", "handcrafted", "handcrafted:" + json_sha256(feats.settings()),
                                      feats.dim, feats, "MFCC/spectral/band/dynamics/loudness/stereo statistics"))
        else:
            raise MixevalError(f"baseline: unknown {name!r}; expected one of {', '.join(BASELINES)}")
    return out


class Cache:
    """Embeddings and metric results on disk, keyed by representation and item set.

    Args:
        root: cache folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _emb_path(self, rep_key: str, set_key: str) -> Path:
        return self.root / "embeddings" / rep_key.replace(":", "-")[:40] / f"{set_key[:40]}.npy"

    def load_embeddings(self, rep_key: str, set_key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """``(kinds, items, dim)`` or None (missing, unreadable or of another shape: recomputed)."""
        path = self._emb_path(rep_key, set_key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable cache entry (%s); recomputing", path, exc)
            self.misses += 1
            return None
        if arr.ndim != 3 or arr.shape[:2] != shape or not np.isfinite(arr).all():
            logger.warning("%s: cache entry of shape %s does not fit %s; recomputing", path, arr.shape, shape)
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def save_embeddings(self, rep_key: str, set_key: str, arr: np.ndarray) -> None:
        with atomic_path(self._emb_path(rep_key, set_key)) as tmp:
            np.save(tmp, np.asarray(arr, dtype=np.float32), allow_pickle=False)

    def _json_path(self, group: str, key: str) -> Path:
        return self.root / group / f"{key[:40]}.json"

    def load_json(self, group: str, key: str):
        path = self._json_path(group, key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("%s: unreadable cache entry; recomputing", path)
            return None

    def save_json(self, group: str, key: str, obj) -> None:
        with atomic_write(self._json_path(group, key), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, default=float)


@torch.no_grad()
def embed_batch(rep: Representation, x: torch.Tensor) -> np.ndarray:
    """Codes ``(B, dim)`` float32 of audio ``(B, 2, T)`` (on the module's device).

    Raises:
        MixevalError: the representation returned a wrong shape or non-finite values.
    """
    assert rep.module is not None
    z = rep.module(x)
    if z.ndim != 2 or z.shape[0] != x.shape[0]:
        raise MixevalError(f"{rep.label}: expected embeddings ({x.shape[0]}, dim), got {tuple(z.shape)}")
    z = z.float().cpu().numpy()
    if not np.isfinite(z).all():
        raise MixevalError(f"{rep.label}: embeddings contain NaN or inf")
    return z


def build_representations(
    encoders, labels, *, baselines=(), sample_rate: int, random_seed: int = 0, noise_dim: int | None = None,
    ideal: bool = True,
) -> list[Representation]:
    """Encoders (in order), the optional baselines, pure noise and (``ideal``) the codes = factors row.

    Labels are made unique by appending `` (2)``, `` (3)`` …; noise has ``noise_dim`` dimensions
    (default: the first representation's size — an encoder, else a baseline).
    """
    if len(labels) > len(encoders):
        raise MixevalError(f"got {len(labels)} labels for {len(encoders)} encoders")
    reps = [encoder_representation(p, labels[i] if i < len(labels) else None) for i, p in enumerate(encoders)]
    first = reps[0].module.config if reps else None
    reps += baseline_representations(baselines, sample_rate=sample_rate, encoder_config=first, random_seed=random_seed)
    dim = noise_dim or (reps[0].dim if reps else 2048)
    reps.append(Representation("pure noise", "noise", "noise:" + json_sha256({"dim": dim}), dim, None, "N(0, 1), independent of the audio"))
    if ideal:
        reps.append(Representation("ideal (codes = factors)", "ideal", "ideal", 0, None, "the factor matrix itself"))
    seen: dict[str, int] = {}
    for r in reps:
        seen[r.label] = seen.get(r.label, 0) + 1
        if seen[r.label] > 1:
            r.label = f"{r.label} ({seen[r.label]})"
    return reps
