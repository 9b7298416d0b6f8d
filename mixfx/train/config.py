"""Training configurations (frozen dataclasses) with the paper's sizes and a CPU-sized ``tiny`` preset."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.models.cloner import ClonerConfig
from mixfx.models.encoder import FXEncoderConfig

VARIANTS = ("none", "norm", "ps")
"""Φ∅ (no FX normalization), Φnorm (normalized data, fixed probabilities), Φp.s. (+ probability scheduling)."""


@dataclass(frozen=True)
class LoopSettings:
    """Settings both trainers share: optimizer, validation / checkpoint cadence, seed, devices, data."""

    lr: float = 2e-4
    val_every: int = 1000
    val_batches: int = 4
    checkpoint_every: int = 1000
    log_every: int = 10
    seed: int = 0
    amp: bool = True
    workers: int = 4
    silence_threshold_db: float = -60.0
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def paper(cls, **overrides):
        return dataclasses.replace(cls(), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass(frozen=True)
class EncoderTrainConfig(LoopSettings):
    """FXencoder contrastive training.

    ``contents`` content pairs per step, each manipulated twice: the NT-Xent batch has
    ``2·contents`` positive pairs (paper: batch 256 → 128 contents). ``steps`` counts optimizer
    steps; the paper's 16K iterations × 4 steps (1…4-stem mixes) = 64K steps. The ``tiny`` preset
    (4-block encoder, 0.75–1.5 s segments, 8 pairs, lr 1e-3, 150 steps) is for CPUs and tests.
    """

    variant: str = "ps"
    encoder: dict = field(default_factory=lambda: FXEncoderConfig.paper().to_dict())
    contents: int = 128
    seconds: tuple[float, float] = (5.9, 11.8)
    steps: int = 64_000
    temperature: float = 0.1
    d0: int = 360

    @classmethod
    def tiny(cls, **overrides) -> "EncoderTrainConfig":
        base = cls(encoder=FXEncoderConfig.tiny().to_dict(), contents=4, seconds=(0.75, 1.5), steps=150, lr=1e-3, d0=32,
                   val_every=50, val_batches=2, checkpoint_every=50, log_every=5, amp=False, workers=0)
        return dataclasses.replace(base, **overrides)

    @classmethod
    def small(cls, **overrides) -> "EncoderTrainConfig":
        """The ``small`` CPU recipe: the 7-block encoder (:meth:`FXEncoderConfig.small`), 1–1.5 s segments,
        8 contents (16 positive pairs: chance NT-Xent ln 31 ≈ 3.43, a harder task than tiny's ln 15), d0 = 64
        of 128, lr 1e-3, 200 steps (≈ 5 minutes on 2 CPU cores)."""
        base = cls(encoder=FXEncoderConfig.small().to_dict(), contents=8, seconds=(1.0, 1.5), steps=200, lr=1e-3, d0=64,
                   val_every=50, val_batches=2, checkpoint_every=50, log_every=10, amp=False, workers=0)
        return dataclasses.replace(base, **overrides)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise MixfxError(f"unknown variant {self.variant!r}; expected one of {', '.join(VARIANTS)}")
        if self.contents < 1 or self.steps < 1:
            raise MixfxError(f"--contents and --steps must be ≥ 1, got contents {self.contents}, steps {self.steps}")
        if self.seed < 0:
            raise MixfxError(f"--seed must be ≥ 0 (it seeds numpy SeedSequence streams), got {self.seed}")


def _identity_start(config: ClonerConfig) -> dict[str, Any]:
    """``config`` with ``input_skip`` on (the CPU presets' Ψ starts as the identity), as a dict."""
    return dataclasses.replace(config, input_skip=True).to_dict()


@dataclass(frozen=True)
class ClonerTrainConfig(LoopSettings):
    """MixFXcloner training (paper: batch 8, 11.8 s segments, Adam 2e-4, cosine).

    ``level_weight`` (default 0, the paper's loss): adds ``level_weight · |ΔRMS| dB``
    (:func:`mixfx.losses.level.level_error_db`) to eq. 1, a level term that charges ±d dB alike where
    the spectral loss's linear term charges +d more than −d. Training logs the level error either way.
    """

    cloner: dict = field(default_factory=lambda: ClonerConfig.paper().to_dict())
    batch: int = 8
    seconds: float = 11.8
    steps: int = 100_000
    fft_sizes: tuple[int, ...] = (4096, 2048, 1024, 512)
    level_weight: float = 0.0

    @classmethod
    def tiny(cls, **overrides) -> "ClonerTrainConfig":
        """The ``tiny`` CPU preset: the 4-block width-16 TCN with ``input_skip`` (Ψ starts as the identity), 4 × 1 s."""
        base = cls(cloner=_identity_start(ClonerConfig.tiny()), batch=4, seconds=1.0, steps=40, val_every=20, val_batches=1,
                   checkpoint_every=20, log_every=5, amp=False, workers=0)
        return dataclasses.replace(base, **overrides)

    @classmethod
    def small(cls, **overrides) -> "ClonerTrainConfig":
        """The ``small`` CPU recipe: a 6-block width-16 TCN (:meth:`ClonerConfig.small`) with ``input_skip``,
        4 × 1 s, lr 1e-3, 200 steps, ``level_weight=0.3``. Without the skip, 200 steps left Ψ worse than its own
        input on every Table 2 column; with it Ψ starts at the input and beats it on L_MSS; the level term
        halves the RMS level error the spectral loss alone leaves (3.4 → 1.9 dB; see the README's notes)."""
        base = cls(cloner=_identity_start(ClonerConfig.small()), batch=4, seconds=1.0, steps=200, lr=1e-3, val_every=50,
                   val_batches=1, checkpoint_every=50, log_every=10, amp=False, workers=0, level_weight=0.3)
        return dataclasses.replace(base, **overrides)

    def __post_init__(self) -> None:
        if self.batch < 1 or self.steps < 1:
            raise MixfxError(f"--batch and --steps must be ≥ 1, got batch {self.batch}, steps {self.steps}")
        if self.seed < 0:
            raise MixfxError(f"--seed must be ≥ 0 (it seeds numpy SeedSequence streams), got {self.seed}")
        if not self.seconds > 0:
            raise MixfxError(f"seconds must be > 0, got {self.seconds}")
        if not self.fft_sizes or min(self.fft_sizes) < 2:
            raise MixfxError(f"fft_sizes must be ≥ 2, got {self.fft_sizes}")
        if not self.level_weight >= 0:
            raise MixfxError(f"--level-weight must be ≥ 0, got {self.level_weight}")
