"""RMS level error in dB: a symmetric level term for MixFXcloner training (not in the paper).

The paper trains Ψ with the multi-scale spectral loss alone (:mod:`mixfx.losses.spectral`). Its
linear term ``mean|S − Ŝ|`` is not symmetric in level: an estimate ``g·gt`` costs ``|1 − g|·mean S``,
so +6 dB (g = 2) costs twice what −6 dB (g = 0.5) costs. A model that cannot read the target level
exactly then minimises the loss by coming out quiet (measured on the CPU presets: −2.9 dB after 200
steps, −4.8 dB after 600; README, "Does it learn?"). ``level_error_db`` charges ±d dB alike; adding
it with a small weight (:attr:`mixfx.train.config.ClonerTrainConfig.level_weight`) removes that pull.
"""

from __future__ import annotations

import torch

__all__ = ["level_error_db", "rms_db"]


def rms_db(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """RMS level of each example over channels and samples, ``10·log10(mean(x²) + eps)`` dB.

    Args:
        x: ``(batch, channels, samples)``.
        eps: added to the mean square (−80 dB floor).

    Returns:
        ``(batch,)``.
    """
    return 10.0 * torch.log10(x.square().mean(dim=(-2, -1)) + eps)


def level_error_db(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``|rms_db(estimate) − rms_db(target)|`` per example (dB; symmetric in the level error).

    Args:
        estimate, target: ``(batch, channels, samples)``.

    Returns:
        ``(batch,)``.
    """
    return (rms_db(estimate, eps) - rms_db(target, eps)).abs()
