"""Stereo panner with three pan laws (no mono fold-down).

:func:`pan` is the effect, :func:`pan_gains` its per-channel gains, :data:`TABLE` its sampled
parameters (pan 0–1, law index into :data:`PAN_LAWS`). In the chain the panner and the imager
run as one fused stage (:func:`mixfx.fx.effects.stereo.pan_and_image_`).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from mixfx.fx.effects._batch import check_audio, per_example
from mixfx.fx.paramspec import EffectTable, ParamKind, ParamSpec

PAN_LAWS = ("-4.5dB", "linear", "constant_power")
PAN = (0.0, 1.0)
"""Pan position range: 0 = left, 1 = right."""


def pan_gains(pan, pan_law) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Left/right gains of the pan laws, with :math:`\theta = pan \cdot \pi/2` (pan 0 = left, 1 = right).

    * ``linear`` (index 1): :math:`g_L = 1 - pan,\ g_R = pan`
    * ``constant_power`` (index 2): :math:`g_L = \cos\theta,\ g_R = \sin\theta`
    * ``-4.5dB`` (index 0): the geometric mean of the two, :math:`\sqrt{(1-pan)\cos\theta}, \sqrt{pan \sin\theta}`

    Args:
        pan: ``(batch,)`` in [0, 1].
        pan_law: ``(batch,)`` integer index into :data:`PAN_LAWS`.
    """
    theta = pan * (math.pi / 2)
    lin_l, lin_r = 1.0 - pan, pan
    cp_l, cp_r = torch.cos(theta), torch.sin(theta)
    mid_l = torch.sqrt((lin_l * cp_l).clamp_min(0))
    mid_r = torch.sqrt((lin_r * cp_r).clamp_min(0))
    law = pan_law.long()
    g_l = torch.where(law == 1, lin_l, torch.where(law == 2, cp_l, mid_l))
    g_r = torch.where(law == 1, lin_r, torch.where(law == 2, cp_r, mid_r))
    return g_l, g_r


def pan(x: torch.Tensor, sample_rate: int, *, pan, pan_law=2) -> torch.Tensor:
    """Stereo panner: multiplies the left and right channels by the pan-law gains (no mono fold-down)."""
    check_audio(x)
    g_l, g_r = pan_gains(per_example(pan, x), per_example(pan_law, x, torch.long))
    return x * torch.stack([g_l, g_r], dim=-1).to(x.dtype).unsqueeze(-1)


def process(x: torch.Tensor, sample_rate: int, values: Mapping[str, torch.Tensor], **_) -> torch.Tensor:
    """:func:`pan` with a configuration's values (see :class:`mixfx.fx.paramspec.EffectTable`)."""
    return pan(x, sample_rate, **TABLE.arguments(values))


TABLE = EffectTable("pan", (
    ParamSpec("pan", "pan", *PAN, neutral=0.5),
    ParamSpec("pan", "law", 0, len(PAN_LAWS) - 1, neutral=2, kind=ParamKind.CATEGORICAL, argument="pan_law"),
), process)
