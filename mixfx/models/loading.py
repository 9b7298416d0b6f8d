"""Load the models a style transfer needs, and resolve the device they run on.

:func:`load_models` loads an FXencoder and a MixFXcloner checkpoint (this project's format or the
official ``FXencoder_ps.pt`` / ``MixFXcloner_ps.pt`` layouts) and checks that they fit together;
:func:`resolve_device` turns a user's device string into a :class:`torch.device` with one-line errors.
"""

from __future__ import annotations

import os

import torch

from mixfx.errors import MixfxError

__all__ = ["load_models", "resolve_device"]


def resolve_device(device=None) -> torch.device:
    """``None`` → CUDA when available, else CPU; a string/device is checked (CUDA must be present).

    Raises:
        MixfxError: an unparsable device, or CUDA asked for where there is none.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise MixfxError(f"device: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MixfxError(f"device {device}: CUDA is not available here; use cpu")
    return device


def load_models(encoder_path: str | os.PathLike, cloner_path: str | os.PathLike, *, device=None):
    """Load an FXencoder and a MixFXcloner (ours or official) on ``device``, both in eval mode.

    Raises:
        MixfxError: unreadable checkpoints, wrong kinds, or cloner ``cond_dim`` ≠ encoder ``dim``.
    """
    from mixfx.models.official import load_official_cloner, load_official_encoder

    encoder = load_official_encoder(encoder_path, map_location=device)
    cloner = load_official_cloner(cloner_path, map_location=device)
    if cloner.config.cond_dim != encoder.dim:
        raise MixfxError(f"{cloner_path}: the MixFXcloner is conditioned on {cloner.config.cond_dim}-d embeddings, but "
                         f"the FXencoder {encoder_path} gives {encoder.dim}-d ones; use the encoder it was trained with")
    return encoder.eval(), cloner.eval()
