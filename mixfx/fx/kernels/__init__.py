"""Private compute backends of the effects, and the one :class:`Backend` switch that picks them.

* :mod:`._numba`: compiled CPU kernels (biquad cascade, compressor, stereo sums), in place.
* :mod:`._triton`: CUDA kernels (fused compressor, biquad response on a spectrum), in place.
* :mod:`._scan`: the compressor ballistics as an associative scan in plain torch (any device).

The effects (:mod:`mixfx.fx.effects`) call these; nothing else should. Which one runs is
:func:`resolve`'s answer for the audio's device and the requested :class:`Backend`.
"""

from __future__ import annotations

import enum

import torch

from mixfx.fx.kernels import _numba, _triton


class Backend(str, enum.Enum):
    """How an effect is computed.

    * ``AUTO`` (``"auto"``): numba on CPU, Triton on CUDA, plain torch where those are missing.
    * ``NUMBA`` (``"numba"``): the compiled CPU kernels (time-domain biquads, sequential compressor).
    * ``TRITON`` (``"triton"``): the CUDA kernels (or CPU under ``TRITON_INTERPRET=1``).
    * ``TORCH`` (``"torch"``): plain torch ops on any device (FFT filtering, parallel-scan compressor).

    The older names are still accepted with the same meaning (:data:`LEGACY_NAMES`):
    ``"loop"`` = numba, ``"fft"`` = ``"scan"`` = torch.
    """

    AUTO = "auto"
    NUMBA = "numba"
    TRITON = "triton"
    TORCH = "torch"


LEGACY_NAMES = {"loop": Backend.NUMBA, "fft": Backend.TORCH, "scan": Backend.TORCH}
"""Backend names of earlier versions and the :class:`Backend` each one means."""


def parse_backend(backend: str | Backend) -> Backend:
    """The :class:`Backend` named by ``backend`` (an enum member, its value or a legacy name).

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(backend, Backend):
        return backend
    if backend in LEGACY_NAMES:
        return LEGACY_NAMES[backend]
    try:
        return Backend(backend)
    except ValueError:
        names = [b.value for b in Backend] + list(LEGACY_NAMES)
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(names)}") from None


def have_numba() -> bool:
    """Whether the numba kernels compiled (read at call time, so tests can switch them off)."""
    return _numba.HAVE_NUMBA


def resolve(x: torch.Tensor, backend: str | Backend) -> Backend:
    """The backend that runs an effect on ``x``: ``NUMBA``, ``TRITON`` or ``TORCH`` (never ``AUTO``).

    Raises:
        ValueError: an unknown name. RuntimeError: an explicit backend that cannot run here.
    """
    chosen = parse_backend(backend)
    if chosen is Backend.NUMBA:
        if not have_numba():
            raise RuntimeError("backend 'numba' needs numba, which failed to import")
        return chosen
    if chosen is Backend.TRITON:
        if not _triton.available(x):
            raise RuntimeError("backend 'triton' needs triton and a CUDA tensor (or TRITON_INTERPRET=1)")
        return chosen
    if chosen is Backend.AUTO:
        if x.device.type == "cpu" and have_numba():
            return Backend.NUMBA
        if x.is_cuda and _triton.available(x):
            return Backend.TRITON
    return Backend.TORCH


__all__ = ["Backend", "LEGACY_NAMES", "have_numba", "parse_backend", "resolve"]
