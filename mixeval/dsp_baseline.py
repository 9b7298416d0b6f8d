"""A model-free style-transfer baseline: move the input's measured FX features onto the reference's.

For each stem, the five FX-normalization features (:mod:`mixfx.fxnorm.features`: EQ curve,
dynamics (mean onset peak), stereo width (mid-energy fraction), pan (left-energy fraction) and
integrated loudness) are **measured on the reference** and the input is FX-normalized towards them
with the same matching steps FX normalization uses (:func:`mixfx.fxnorm.matching.normalize_stem`:
EQ-matching FIR, compressor search, imager, panning, loudness; in that order). A feature the
reference does not have (a silent reference, or no onsets for the dynamics) is skipped.

It answers the question a user asks before training anything: does Ψ beat plain feature matching?
"""

from __future__ import annotations

import numpy as np
import torch

from mixfx import SAMPLE_RATE
from mixfx.fxnorm.matching import EFFECTS, normalize_stem
from mixfx.fxnorm.features import FEATURE_NAMES, measure_feature
from mixfx.fxnorm.targets import FXNormFeatures

__all__ = ["match_reference_features", "reference_features"]



def reference_features(reference: torch.Tensor, stem: str, sample_rate: int = SAMPLE_RATE) -> tuple[FXNormFeatures, tuple[str, ...]] | None:
    """The reference's measured features as one-stem targets, and the steps it supports.

    Returns ``None`` for a silent reference (every feature is then ``None``). The EQ curve is smoothed
    like dataset targets. A reference without onsets has no dynamics target: the compression step is
    left out of the steps and its table entry is a placeholder that is never used.
    """
    # the normalization steps are named after the features they match (``EFFECTS`` ⊂ ``FEATURE_NAMES``)
    measured = {f: measure_feature(reference, f, sample_rate) for f in FEATURE_NAMES}
    if measured["loudness"] is None:
        return None
    steps = tuple(e for e in EFFECTS if measured[e] is not None)
    feats = FXNormFeatures(
        eq={stem: measured["eq"]},
        compression={stem: measured["compression"] if measured["compression"] is not None else (0.0, 0.0)},
        imager={stem: measured["imager"]}, panning={stem: measured["panning"]}, loudness={stem: measured["loudness"]},
        sample_rate=sample_rate,
    )
    return feats.smoothed(), steps


def match_reference_features(x: torch.Tensor, reference: torch.Tensor, stem: str, *,
                             rng: np.random.Generator | None = None, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``(2, T)`` input with its FX features moved to those of ``reference`` ``(2, T')``.

    Silent inputs or references give the input unchanged; the result is clamped to [−1, 1].
    """
    target = reference_features(reference, stem, sample_rate)
    if target is None:
        return x.to(torch.float32)
    feats, steps = target
    return normalize_stem(x, stem, feats, sample_rate=sample_rate, rng=rng, effects=steps).clamp(-1, 1)
