"""Loudness gain with optional polarity inversion (the chain's last effect, not renormalised).

:func:`gain` is the effect, :func:`gain_` the chain's in-place stage, :data:`TABLE` its sampled
parameters (−6…+9 dB, inversion 0/1).
"""

from __future__ import annotations

from typing import Mapping

import torch

from mixfx.fx.effects._batch import check_audio, per_example
from mixfx.fx.paramspec import EffectTable, ParamKind, ParamSpec
from mixfx.fx.signal import db_to_amplitude

GAIN_DB = (-6.0, 9.0)
"""Range of the loudness gain."""


def gain_factor(gain_db: torch.Tensor, invert: torch.Tensor) -> torch.Tensor:
    r"""The gain's amplitude factor :math:`\pm 10^{g/20}`, per example (``gain_db``'s dtype)."""
    return db_to_amplitude(gain_db) * (1.0 - 2.0 * invert.to(gain_db.dtype))


def gain(x: torch.Tensor, sample_rate: int, *, gain_db, invert=False) -> torch.Tensor:
    r"""Loudness gain: :math:`y = \pm 10^{g/20} x` (``invert`` flips the polarity)."""
    check_audio(x)
    return x * gain_factor(per_example(gain_db, x), per_example(invert, x)).view(-1, 1, 1)


def gain_(y: torch.Tensor, *, gain_on: torch.Tensor, gain_db: torch.Tensor, invert: torch.Tensor) -> torch.Tensor:
    """The chain's stage: multiply the examples where ``gain_on`` by :func:`gain_factor`, in place."""
    dev = y.device
    gain_on = gain_on.to(dev)
    if bool(gain_on.any()):
        amp = gain_factor(gain_db.to(dev, torch.float32), invert.to(dev))
        y.mul_(torch.where(gain_on, amp, torch.ones_like(amp)).to(y.dtype).view(-1, 1, 1))
    return y


def process(x: torch.Tensor, sample_rate: int, values: Mapping[str, torch.Tensor], **_) -> torch.Tensor:
    """:func:`gain` with a configuration's values (see :class:`mixfx.fx.paramspec.EffectTable`)."""
    return gain(x, sample_rate, **TABLE.arguments(values))


TABLE = EffectTable("gain", (
    ParamSpec("gain", "gain_db", *GAIN_DB, neutral=0.0, unit="dB"),
    ParamSpec("gain", "invert", 0, 1, neutral=0, kind=ParamKind.BOOL),
), process)
