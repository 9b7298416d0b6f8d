"""Feed-forward dynamic range compressor (log-domain, soft knee, smooth decoupled ballistics).

:func:`compressor` is the effect (any device; differentiable on the ``torch`` backend),
:func:`compress_` the chain's fused in-place stage, :data:`TABLE` its sampled parameters
(official ranges: threshold −80…−5 dB, ratio 4–40, attack 1–20 ms, release 50–500 ms, hard knee).

Per sample and channel: level ``20·log10|x|`` → static curve (:func:`gain_computer`; its gain
reduction :func:`static_reduction_db`) → attack/release ballistics (:func:`smooth_gain_reduction`)
→ ``y = x · 10^((makeup − GR)/20)``. The compiled kernels (numba on CPU, Triton on CUDA) fuse
the same steps in one pass; tests hold them to these definitions. Each compiled backend holds
exactly one copy of the static curve, a helper named ``_static_reduction_db`` (``@njit`` scalar in
``kernels/_numba.py``, ``@triton.jit`` in ``kernels/_triton.py``), checked against
:func:`static_reduction_db` on a grid by ``tests/test_fx_compressor_curve.py``.

References:
    D. Giannoulis, M. Massberg, J. D. Reiss, "Digital Dynamic Range Compressor Design — A
    Tutorial and Analysis", J. Audio Eng. Soc. 60(6), 2012.
"""

from __future__ import annotations

from typing import Mapping

import torch

from mixfx.fx import kernels
from mixfx.fx.effects._batch import apply_to_rows_, check_audio, per_example, rows_of
from mixfx.fx.kernels import Backend, _numba, _scan, _triton
from mixfx.fx.paramspec import EffectTable, ParamSpec
from mixfx.fx.signal import POWER_FLOOR, amplitude_to_db, db_to_amplitude, mean_power

THRESHOLD_DB = (-80.0, -5.0)
RATIO = (4.0, 40.0)
ATTACK_MS = (1.0, 20.0)
RELEASE_MS = (50.0, 500.0)
KNEE_DB = (0.0, 0.0)
"""The official ranges (the chain's compressor has a hard knee)."""


def gain_computer(level_db: torch.Tensor, threshold_db, ratio, knee_db) -> torch.Tensor:
    r"""Static compression curve with a quadratic soft knee (Giannoulis et al. 2012, eq. 4).

    Returns the output level in dB for an input level ``level_db``; parameters broadcast.

    .. math::
        y = \begin{cases} x & 2(x-T) < -W \\
        x + (1/R - 1)(x - T + W/2)^2 / (2W) & 2|x-T| \le W \\
        T + (x - T)/R & 2(x-T) > W \end{cases}
    """
    over = level_db - threshold_db
    knee = torch.as_tensor(knee_db, dtype=level_db.dtype, device=level_db.device).clamp_min(0)
    compressed = threshold_db + over / ratio
    soft = level_db + (1.0 / ratio - 1.0) * (over + knee / 2).square() / (2 * knee.clamp_min(1e-6))
    y = torch.where(2 * over > knee, compressed, level_db)
    return torch.where((2 * over.abs() <= knee) & (knee > 0), soft, y)


def static_reduction_db(level_db: torch.Tensor, threshold_db, ratio, knee_db) -> torch.Tensor:
    """Gain reduction of the static curve in dB (≥ 0): ``level − gain_computer(level)``."""
    return (level_db - gain_computer(level_db, threshold_db, ratio, knee_db)).clamp_min(0)


def time_constant_coefficient(time_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    r"""One-pole coefficient :math:`a = e^{-1 / (0.001 \cdot sr \cdot t_{ms})}` for a time constant in ms.

    A step of the gain reduction then reaches :math:`1 - 1/e` (63 %) of its change after ``t_ms``.
    """
    return torch.exp(-1.0 / (0.001 * sample_rate * time_ms.clamp_min(1e-3)))


def smooth_gain_reduction(reduction_db: torch.Tensor, attack_coef: torch.Tensor, release_coef: torch.Tensor) -> torch.Tensor:
    """The smooth decoupled peak detector over each row of ``reduction_db`` ``(rows, samples)``::

        y1[n] = max(r[n], a_r · y1[n-1] + (1 - a_r) · r[n])      # release (peak hold with decay)
        y[n]  = a_a · y[n-1] + (1 - a_a) · y1[n]                 # attack (one-pole smoothing)

    computed exactly as a parallel scan (any device); ``attack_coef, release_coef``: ``(rows,)``.
    """
    return _scan.smooth_gain_reduction(reduction_db, attack_coef, release_coef)


def compressor(x: torch.Tensor, sample_rate: int, *, threshold_db, ratio, attack_ms, release_ms, knee_db=0.0,
               makeup_db=0.0, backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """Feed-forward dynamic range compressor, log-domain gain computer, per channel (unlinked).

    A signal that stays below ``threshold − knee/2`` is returned unchanged (up to ``makeup``).

    Args:
        x: ``(batch, 2, samples)``.
        threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db: ``(batch,)`` or floats.
        backend: :class:`mixfx.fx.kernels.Backend`: numba (fused kernel, CPU), triton (fused
            kernel, CUDA), torch (torch ops with a parallel scan for the ballistics, any device).
    """
    check_audio(x)
    batch, channels, n = x.shape
    family = kernels.resolve(x, backend)
    if family is not Backend.TORCH:
        y = x.to(torch.float32, copy=True).contiguous()
        params = {k: per_example(v, x) for k, v in dict(threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms,
                                                        release_ms=release_ms, knee_db=knee_db,
                                                        makeup_db=makeup_db).items()}
        return compress_rows_(y, torch.arange(batch), sample_rate, family=family, **params).to(x.dtype)
    thr, rat = per_example(threshold_db, x).view(-1, 1, 1), per_example(ratio, x).view(-1, 1, 1)
    knee = per_example(knee_db, x).view(-1, 1, 1)
    reduction = static_reduction_db(amplitude_to_db(x, floor=1e-8), thr, rat, knee)
    a_att = time_constant_coefficient(per_example(attack_ms, x), sample_rate).repeat_interleave(channels)
    a_rel = time_constant_coefficient(per_example(release_ms, x), sample_rate).repeat_interleave(channels)
    smoothed = smooth_gain_reduction(reduction.reshape(batch * channels, n), a_att, a_rel)
    gain_db = per_example(makeup_db, x).view(-1, 1, 1) - smoothed.view(batch, channels, n)
    return x * db_to_amplitude(gain_db).to(x.dtype)


def compress_rows_(y: torch.Tensor, rows: torch.Tensor, sample_rate: int, *, family: str | Backend,
                   threshold_db: torch.Tensor, ratio: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor,
                   knee_db: torch.Tensor, makeup_db: torch.Tensor, renormalize: bool = False) -> torch.Tensor:
    """:func:`compressor` through a compiled kernel (``family`` numba or triton), in place.

    Compresses examples ``rows`` of the contiguous float32 ``y``; the parameters are ``(k,)``, one
    per processed example. ``renormalize`` rescales each of them to its input RMS
    (:func:`mixfx.fx.signal.match_rms`), inside the numba kernel or as one extra pass after the
    Triton one.
    """
    params = (threshold_db.double(), ratio.double(), knee_db.double(),
              time_constant_coefficient(attack_ms.double(), sample_rate),
              time_constant_coefficient(release_ms.double(), sample_rate), makeup_db.double())
    if kernels.parse_backend(family) is Backend.NUMBA:
        return _numba.compressor_(y, rows, *params, renormalize=renormalize, floor=POWER_FLOOR)
    before = mean_power(y) if renormalize else None
    _triton.compressor_(y, rows, *params)
    if renormalize:
        scale = torch.ones_like(before)
        index = rows.to(y.device)
        scale[index] = torch.sqrt(before[index] / mean_power(y)[index].clamp_min(POWER_FLOOR))
        y.mul_(scale.to(y.dtype).view(-1, 1, 1))
    return y


def compress_(y: torch.Tensor, mask: torch.Tensor, *, sample_rate: int, threshold_db: torch.Tensor,
              ratio: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor, knee_db: torch.Tensor,
              renormalize: bool = True, backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """The chain's stage: compress the examples where ``mask`` is set (parameters ``(batch,)``), renormalised,
    in place."""
    rows = rows_of(mask)
    if rows.numel() == 0:
        return y
    family = kernels.resolve(y, backend)
    pick = lambda v: v.index_select(0, rows.to(v.device))  # noqa: E731
    params = dict(threshold_db=pick(threshold_db), ratio=pick(ratio), attack_ms=pick(attack_ms),
                  release_ms=pick(release_ms), knee_db=pick(knee_db))
    if family is not Backend.TORCH:
        return compress_rows_(y, rows, sample_rate, family=family, makeup_db=torch.zeros(rows.numel()),
                              renormalize=renormalize, **params)
    return apply_to_rows_(y, rows, lambda s: compressor(s, sample_rate, backend=backend, **params),
                          renormalize=renormalize)


def process(x: torch.Tensor, sample_rate: int, values: Mapping[str, torch.Tensor], *,
            backend: str | Backend = Backend.AUTO, **_) -> torch.Tensor:
    """:func:`compressor` with a configuration's values (see :class:`mixfx.fx.paramspec.EffectTable`)."""
    return compressor(x, sample_rate, backend=backend, **TABLE.arguments(values))


TABLE = EffectTable("compressor", (
    ParamSpec("compressor", "threshold_db", *THRESHOLD_DB, neutral="high", unit="dB"),
    ParamSpec("compressor", "ratio", *RATIO, neutral="low"),
    ParamSpec("compressor", "attack_ms", *ATTACK_MS, neutral="mid", unit="ms"),
    ParamSpec("compressor", "release_ms", *RELEASE_MS, neutral="mid", unit="ms"),
    ParamSpec("compressor", "knee_db", *KNEE_DB, neutral="low", unit="dB"),
), process)
