"""Five-band parametric equaliser: low shelf, three peaks, high shelf (RBJ biquads in cascade).

:func:`equalizer` is the effect (any device, differentiable on the ``torch`` backend);
:func:`equalize_` is the chain's fused in-place stage; :data:`TABLE` its sampled parameters
(official ranges: gains ±15 dB, peak Q 0.1–2, shelves at Q 0.707).
"""

from __future__ import annotations

from typing import Mapping

import torch

from mixfx.fx import kernels
from mixfx.fx.effects._batch import apply_to_rows_, check_audio, per_example, rows_of
from mixfx.fx.kernels import Backend, _numba
from mixfx.fx.paramspec import EffectTable, ParamSpec
from mixfx.fx.signal import POWER_FLOOR, biquad_coefficients, biquad_filter

EQ_BANDS = (
    # (name, biquad kind)
    ("low_shelf", "low_shelf"),
    ("peak1", "peak"),
    ("peak2", "peak"),
    ("peak3", "peak"),
    ("high_shelf", "high_shelf"),
)
EQ_BAND_NAMES = tuple(name for name, _ in EQ_BANDS)
BAND_HZ = {"low_shelf": (30.0, 200.0), "peak1": (200.0, 1000.0), "peak2": (1000.0, 3000.0),
           "peak3": (3000.0, 8000.0), "high_shelf": (5000.0, 10000.0)}
GAIN_DB = (-15.0, 15.0)
PEAK_Q = (0.1, 2.0)
SHELF_Q = 0.707
"""The shelves' fixed Q (not sampled)."""
TAIL_SECONDS = 0.1
"""Zero padding of the FFT formulation: the cascade's impulse response has decayed by then."""


def _band_params(band: str) -> list[ParamSpec]:
    lo, hi = BAND_HZ[band]
    rows = [ParamSpec("eq", f"{band}_gain_db", *GAIN_DB, neutral=0.0, unit="dB"),
            ParamSpec("eq", f"{band}_hz", lo, hi, neutral="mid", unit="Hz")]
    if band.startswith("peak"):
        rows.append(ParamSpec("eq", f"{band}_q", *PEAK_Q, neutral="mid"))
    return rows


def equalizer(x: torch.Tensor, sample_rate: int, *, tail_seconds: float = TAIL_SECONDS,
              backend: str | Backend = Backend.AUTO, **params) -> torch.Tensor:
    """Five-band parametric EQ: low shelf, three peaks, high shelf (RBJ biquads in cascade).

    Two exact formulations: on CPU the biquads run in time (transposed direct form II with
    float64 state, ``Backend.NUMBA``); otherwise the cascade's frequency response multiplies the
    spectrum on a zero-padded FFT grid (``TRITON``: one fused kernel, ``TORCH``: torch ops), which
    equals the IIR output once the impulse response has decayed within ``tail_seconds`` (true for
    the chain's ranges: f ≥ 30 Hz, Q ≥ 0.1).

    Args:
        x: ``(batch, 2, samples)``.
        **params: ``(batch,)`` tensors ``low_shelf_gain_db, low_shelf_hz, low_shelf_q, peak1_gain_db,
            peak1_hz, peak1_q, ..., high_shelf_gain_db, high_shelf_hz, high_shelf_q``.
    """
    check_audio(x)
    b, a = equalizer_coefficients(sample_rate, **{k: per_example(v, x) for k, v in params.items()})
    return biquad_filter(x, b, a, tail=int(tail_seconds * sample_rate), backend=backend)


def equalizer_coefficients(sample_rate: int, **params) -> tuple[torch.Tensor, torch.Tensor]:
    """Biquad coefficients ``(b, a)``, each ``(batch, 5, 3)`` float64, of :func:`equalizer`'s bands."""
    p = {k: torch.as_tensor(v).double() for k, v in params.items()}
    coefs = [biquad_coefficients(kind, p[f"{band}_hz"], p[f"{band}_gain_db"], p[f"{band}_q"], sample_rate)
             for band, kind in EQ_BANDS]
    return torch.stack([c[0] for c in coefs], dim=1), torch.stack([c[1] for c in coefs], dim=1)


def equalizer_arguments(values: Mapping[str, torch.Tensor], *, shelf_q: float = SHELF_Q) -> dict[str, torch.Tensor]:
    """:func:`equalizer`'s keywords from a configuration's values (the shelves' fixed Q filled in)."""
    kw = TABLE.arguments(values)
    for band in ("low_shelf", "high_shelf"):
        kw.setdefault(f"{band}_q", torch.full_like(kw[f"{band}_hz"], shelf_q))
    return kw


def shelf_filter(x: torch.Tensor, sample_rate: int, *, kind: str, freq_hz: float, gain_db: float,
                 backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """A single shelf (``low_shelf``/``high_shelf``, Q 0.707) applied like :func:`equalizer`."""
    full = lambda v: torch.full((x.shape[0],), float(v), dtype=torch.float64, device=x.device)  # noqa: E731
    b, a = biquad_coefficients(kind, full(freq_hz), full(gain_db), full(0.7071), sample_rate)
    return biquad_filter(x, b.unsqueeze(1), a.unsqueeze(1), tail=int(TAIL_SECONDS * sample_rate), backend=backend)


def equalize_(y: torch.Tensor, mask: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, sample_rate: int,
              renormalize: bool = True, backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """The chain's stage: filter the examples where ``mask`` is set through their cascades ``b, a``
    ``(batch, sections, 3)`` (from :func:`equalizer_coefficients`), renormalised, in place."""
    rows = rows_of(mask)
    if rows.numel() == 0:
        return y
    bs, as_ = b.index_select(0, rows.to(b.device)), a.index_select(0, rows.to(a.device))
    if kernels.resolve(y, backend) is Backend.NUMBA:
        return _numba.biquad_cascade_(y, rows, bs, as_, renormalize=renormalize, floor=POWER_FLOOR)
    tail = int(TAIL_SECONDS * sample_rate)
    return apply_to_rows_(y, rows, lambda s: biquad_filter(s, bs, as_, tail=tail, backend=backend),
                          renormalize=renormalize)


def process(x: torch.Tensor, sample_rate: int, values: Mapping[str, torch.Tensor], *,
            backend: str | Backend = Backend.AUTO, shelf_q: float = SHELF_Q, **_) -> torch.Tensor:
    """:func:`equalizer` with a configuration's values (see :class:`mixfx.fx.paramspec.EffectTable`)."""
    return equalizer(x, sample_rate, backend=backend, **equalizer_arguments(values, shelf_q=shelf_q))


TABLE = EffectTable("eq", tuple(p for band in EQ_BAND_NAMES for p in _band_params(band)), process)
