"""Helpers shared by the effects: parameter broadcasting, shape checks, per-example row selection."""

from __future__ import annotations

from typing import Callable

import torch

from mixfx.fx.signal import match_rms


def per_example(value, x: torch.Tensor, dtype=None) -> torch.Tensor:
    """``value`` (a float or a ``(batch,)`` tensor) as a ``(batch,)`` tensor on ``x``'s device."""
    t = torch.as_tensor(value, dtype=dtype or x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t


def check_audio(x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is stereo audio ``(batch, 2, samples)``."""
    if x.ndim != 3 or x.shape[1] != 2:
        raise ValueError(f"expected stereo audio of shape (batch, 2, samples), got {tuple(x.shape)}")


def rows_of(mask: torch.Tensor) -> torch.Tensor:
    """Indices of the set entries of a ``(batch,)`` mask."""
    return torch.nonzero(mask).flatten()


def apply_to_rows_(y: torch.Tensor, rows: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], *,
                   renormalize: bool) -> torch.Tensor:
    """Out-of-place fallback of a stage: ``y[rows] = renorm(fn(y[rows]))`` with one gather and one scatter."""
    whole = rows.numel() == y.shape[0]
    sub = y if whole else y.index_select(0, rows)
    out = fn(sub)
    if renormalize:
        out = match_rms(out, sub)
    if whole:
        return y.copy_(out)
    return y.index_copy_(0, rows, out.to(y.dtype))
