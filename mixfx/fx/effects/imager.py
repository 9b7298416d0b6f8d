"""Mid/side stereo imager (width 0 = mono, 1 = unchanged, 2 = all side), energy preserving.

:func:`stereo_imager` is the effect, :func:`imager_side_gain` its side gain, :data:`TABLE` its
sampled parameter. In the chain it runs fused with the panner
(:func:`mixfx.fx.effects.stereo.pan_and_image_`).
"""

from __future__ import annotations

from typing import Mapping

import torch

from mixfx.fx.effects._batch import check_audio, per_example
from mixfx.fx.paramspec import EffectTable, ParamSpec

WIDTH = (0.0, 2.0)
"""Width range: 0 mono, 1 unchanged, 2 all side."""


def imager_side_gain(mid_energy: torch.Tensor, side_energy: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    r"""Side gain of the mid/side imager for a width setting in [0, 2].

    * ``width ≤ 1``: side gain = ``width`` (narrower; 0 = mono, 1 = unchanged).
    * ``width > 1``: the side share of the total M/S energy moves linearly from its current value
      :math:`s_0` (at 1) to 1 (at 2): :math:`s = s_0 + (width - 1)(1 - s_0)`.

    The official imager uses :math:`\sqrt{E/E_S}\,(width-1)` above 1, which jumps from
    "unchanged" at 1.0 to "mono" just above it; this form is continuous and reaches the same
    end point (all side) at 2.
    """
    total = mid_energy + side_energy
    s0 = side_energy / total.clamp_min(1e-12)
    s_target = s0 + (width - 1.0).clamp_min(0) * (1.0 - s0)
    wide = torch.sqrt(s_target * total / side_energy.clamp_min(1e-12))
    return torch.where(width <= 1.0, width, wide)


def imager_gains(mid_energy: torch.Tensor, side_energy: torch.Tensor, width: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(mid_gain, side_gain)``: the side gain of :func:`imager_side_gain` and the mid gain that keeps
    :math:`E_M + E_S` unchanged, :math:`g_M = \sqrt{(E_M + E_S - g_S^2 E_S) / E_M}`."""
    side_gain = imager_side_gain(mid_energy, side_energy, width)
    new_side = side_energy * side_gain.square()
    mid_gain = torch.sqrt(((mid_energy + side_energy) - new_side).clamp_min(0) / mid_energy.clamp_min(1e-12))
    return mid_gain, side_gain


def stereo_imager(x: torch.Tensor, sample_rate: int, *, width) -> torch.Tensor:
    r"""Mid/side stereo imager. :math:`M = L + R`, :math:`S = L - R`; the side and mid are scaled by
    :func:`imager_gains` (so the stereo energy is unchanged); back to L/R with :math:`((M \pm S)/2)`.

    Args:
        width: ``(batch,)`` in [0, 2]: 0 mono, 1 unchanged, 2 all side.
    """
    check_audio(x)
    w = per_example(width, x)
    mid = x[:, 0] + x[:, 1]
    side = x[:, 0] - x[:, 1]
    mid_gain, side_gain = imager_gains(mid.square().sum(-1), side.square().sum(-1), w)
    mid = mid * mid_gain.unsqueeze(-1)
    side = side * side_gain.unsqueeze(-1)
    return torch.stack([(mid + side) / 2, (mid - side) / 2], dim=1)


def process(x: torch.Tensor, sample_rate: int, values: Mapping[str, torch.Tensor], **_) -> torch.Tensor:
    """:func:`stereo_imager` with a configuration's values (see :class:`mixfx.fx.paramspec.EffectTable`)."""
    return stereo_imager(x, sample_rate, **TABLE.arguments(values))


TABLE = EffectTable("imager", (ParamSpec("imager", "width", *WIDTH, neutral=1.0),), process)
