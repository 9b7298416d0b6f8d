"""Stateless batched audio effects: ``fx(x, sample_rate, **params)``.

``x`` is ``(batch, 2, samples)``; every parameter is a ``(batch,)`` tensor (or a float, broadcast),
so each example gets its own setting in one call. Every function works on CPU and CUDA and does
no I/O. The chain (:mod:`mixfx.fx.chain`) adds the official level renormalisation between effects;
these functions implement each effect's textbook definition.
"""

from __future__ import annotations

import math

import torch

from mixfx.fx import gpu_kernels, kernels
from mixfx.fx.convolution import aligned_convolution, aligned_ir_spectra, fft_size, ir_peaks
from mixfx.fx.ballistics import smooth_gain_reduction, time_constant_coefficient
from mixfx.fx.signal import (
    POWER_FLOOR,
    amplitude_to_db,
    biquad_coefficients,
    biquad_filter,
    db_to_amplitude,
    kernel_family,
    match_rms,
    mean_power,
)

PAN_LAWS = ("-4.5dB", "linear", "constant_power")
EQ_BANDS = (
    # (name, biquad kind)
    ("low_shelf", "low_shelf"),
    ("peak1", "peak"),
    ("peak2", "peak"),
    ("peak3", "peak"),
    ("high_shelf", "high_shelf"),
)


def _param(value, x: torch.Tensor, dtype=None) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype or x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t


def _check_audio(x: torch.Tensor) -> None:
    if x.ndim != 3 or x.shape[1] != 2:
        raise ValueError(f"expected stereo audio of shape (batch, 2, samples), got {tuple(x.shape)}")


# --------------------------------------------------------------------------------------- gain, pan, imager


def gain(x: torch.Tensor, sample_rate: int, *, gain_db, invert=False) -> torch.Tensor:
    r"""Loudness gain: :math:`y = \pm 10^{g/20} x` (``invert`` flips the polarity)."""
    _check_audio(x)
    return x * gain_factor(_param(gain_db, x), _param(invert, x)).view(-1, 1, 1)


def gain_factor(gain_db: torch.Tensor, invert: torch.Tensor) -> torch.Tensor:
    r"""The gain's amplitude factor :math:`\pm 10^{g/20}`, per example (``gain_db``'s dtype)."""
    return db_to_amplitude(gain_db) * (1.0 - 2.0 * invert.to(gain_db.dtype))


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
    _check_audio(x)
    g_l, g_r = pan_gains(_param(pan, x), _param(pan_law, x, torch.long))
    return x * torch.stack([g_l, g_r], dim=-1).to(x.dtype).unsqueeze(-1)


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


def stereo_imager(x: torch.Tensor, sample_rate: int, *, width) -> torch.Tensor:
    r"""Mid/side stereo imager. :math:`M = L + R`, :math:`S = L - R`; the side is scaled by
    :func:`imager_side_gain` and the mid by the gain that keeps :math:`E_M + E_S` (and so the
    stereo energy) unchanged; back to L/R with :math:`((M \pm S)/2)`.

    Args:
        width: ``(batch,)`` in [0, 2]: 0 mono, 1 unchanged, 2 all side.
    """
    _check_audio(x)
    w = _param(width, x)
    mid = x[:, 0] + x[:, 1]
    side = x[:, 0] - x[:, 1]
    e_mid, e_side = mid.square().sum(-1), side.square().sum(-1)
    side_gain = imager_side_gain(e_mid, e_side, w)
    new_side_e = e_side * side_gain.square()
    mid_gain = torch.sqrt(((e_mid + e_side) - new_side_e).clamp_min(0) / e_mid.clamp_min(1e-12))
    mid = mid * mid_gain.unsqueeze(-1)
    side = side * side_gain.unsqueeze(-1)
    return torch.stack([(mid + side) / 2, (mid - side) / 2], dim=1)


# --------------------------------------------------------------------------------------- equaliser


def equalizer(
    x: torch.Tensor, sample_rate: int, *, tail_seconds: float = 0.1, backend: str = "auto", **params
) -> torch.Tensor:
    """Five-band parametric EQ: low shelf, three peaks, high shelf (RBJ biquads in cascade).

    Two exact formulations: on CPU the biquads run in time (transposed direct form II with
    float64 state, numba: ``backend="loop"``); on CUDA the cascade's frequency response multiplies
    the spectrum on a zero-padded FFT grid (``backend="triton"``: one fused kernel, or ``"fft"``:
    torch ops), which equals the IIR output once
    the impulse response has decayed within ``tail_seconds`` (true for the chain's ranges:
    f ≥ 30 Hz, Q ≥ 0.1).

    Args:
        x: ``(batch, 2, samples)``.
        **params: ``(batch,)`` tensors ``low_shelf_gain_db, low_shelf_hz, low_shelf_q, peak1_gain_db,
            peak1_hz, peak1_q, ..., high_shelf_gain_db, high_shelf_hz, high_shelf_q``.
    """
    _check_audio(x)
    b, a = equalizer_coefficients(sample_rate, **{k: _param(v, x) for k, v in params.items()})
    return biquad_filter(x, b, a, tail=int(tail_seconds * sample_rate), backend=backend)


def equalizer_coefficients(sample_rate: int, **params) -> tuple[torch.Tensor, torch.Tensor]:
    """Biquad coefficients ``(b, a)``, each ``(batch, 5, 3)`` float64, of :func:`equalizer`'s bands."""
    p = {k: torch.as_tensor(v).double() for k, v in params.items()}
    coefs = [biquad_coefficients(kind, p[f"{band}_hz"], p[f"{band}_gain_db"], p[f"{band}_q"], sample_rate)
             for band, kind in EQ_BANDS]
    return torch.stack([c[0] for c in coefs], dim=1), torch.stack([c[1] for c in coefs], dim=1)


def shelf_filter(x: torch.Tensor, sample_rate: int, *, kind: str, freq_hz: float, gain_db: float,
                 backend: str = "auto") -> torch.Tensor:
    """A single shelf (``low_shelf``/``high_shelf``, Q 0.707) applied like :func:`equalizer`."""
    full = lambda v: torch.full((x.shape[0],), float(v), dtype=torch.float64, device=x.device)  # noqa: E731
    b, a = biquad_coefficients(kind, full(freq_hz), full(gain_db), full(0.7071), sample_rate)
    return biquad_filter(x, b.unsqueeze(1), a.unsqueeze(1), tail=int(0.1 * sample_rate), backend=backend)


# --------------------------------------------------------------------------------------- compressor


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


def compressor(
    x: torch.Tensor,
    sample_rate: int,
    *,
    threshold_db,
    ratio,
    attack_ms,
    release_ms,
    knee_db=0.0,
    makeup_db=0.0,
    backend: str = "auto",
) -> torch.Tensor:
    """Feed-forward dynamic range compressor, log-domain gain computer, per channel (unlinked).

    Per sample: level ``20·log10|x|`` → static curve (:func:`gain_computer`) → gain reduction
    in dB → attack/release ballistics (:mod:`mixfx.fx.ballistics`) → ``y = x · 10^((makeup − GR)/20)``.
    A signal that stays below ``threshold − knee/2`` is returned unchanged (up to ``makeup``).

    Args:
        x: ``(batch, 2, samples)``.
        threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db: ``(batch,)`` or floats.
        backend: ``"loop"`` (fused numba kernel, CPU), ``"triton"`` (fused Triton kernel, CUDA),
            ``"scan"`` (torch ops with a parallel scan for the ballistics, any device) or ``"auto"``
            (see :func:`mixfx.fx.signal.kernel_family`).
    """
    _check_audio(x)
    batch, channels, n = x.shape
    family = kernel_family(x, backend)
    if family in ("numba", "triton"):
        y = x.to(torch.float32, copy=True).contiguous()
        params = {k: _param(v, x) for k, v in dict(threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms,
                                                   release_ms=release_ms, knee_db=knee_db, makeup_db=makeup_db).items()}
        return compress_rows_(y, torch.arange(batch), sample_rate, family=family, **params).to(x.dtype)
    thr, rat = _param(threshold_db, x).view(-1, 1, 1), _param(ratio, x).view(-1, 1, 1)
    knee = _param(knee_db, x).view(-1, 1, 1)
    level = amplitude_to_db(x, floor=1e-8)
    reduction = (level - gain_computer(level, thr, rat, knee)).clamp_min(0)
    a_att = time_constant_coefficient(_param(attack_ms, x), sample_rate).repeat_interleave(channels)
    a_rel = time_constant_coefficient(_param(release_ms, x), sample_rate).repeat_interleave(channels)
    smoothed = smooth_gain_reduction(reduction.reshape(batch * channels, n), a_att, a_rel)
    gain_db = _param(makeup_db, x).view(-1, 1, 1) - smoothed.view(batch, channels, n)
    return x * db_to_amplitude(gain_db).to(x.dtype)


def compress_rows_(y: torch.Tensor, rows: torch.Tensor, sample_rate: int, *, family: str, threshold_db: torch.Tensor,
                   ratio: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor, knee_db: torch.Tensor,
                   makeup_db: torch.Tensor, renormalize: bool = False) -> torch.Tensor:
    """:func:`compressor` through a compiled kernel (``family`` ``"numba"`` or ``"triton"``), in place.

    Compresses examples ``rows`` of the contiguous float32 ``y``; the parameters are ``(k,)``, one
    per processed example. ``renormalize`` rescales each of them to its input RMS
    (:func:`~mixfx.fx.signal.match_rms`), inside the numba kernel or as one extra pass after the
    Triton one.
    """
    params = (threshold_db.double(), ratio.double(), knee_db.double(),
              time_constant_coefficient(attack_ms.double(), sample_rate),
              time_constant_coefficient(release_ms.double(), sample_rate), makeup_db.double())
    if family == "numba":
        return kernels.compressor_(y, rows, *params, renormalize=renormalize, floor=POWER_FLOOR)
    before = mean_power(y) if renormalize else None
    gpu_kernels.compressor_(y, rows, *params)
    if renormalize:
        scale = torch.ones_like(before)
        index = rows.to(y.device)
        scale[index] = torch.sqrt(before[index] / mean_power(y)[index].clamp_min(POWER_FLOOR))
        y.mul_(scale.to(y.dtype).view(-1, 1, 1))
    return y


# --------------------------------------------------------------------------------------- reverb


def convolution_reverb(x: torch.Tensor, sample_rate: int, *, ir: torch.Tensor, dry_weight) -> torch.Tensor:
    """Parallel convolution reverb: ``y = w·x + (1 − w)·wet`` with the wet RMS-matched to the dry.

    The wet signal is the convolution with the impulse response, aligned to the IR's peak (the
    pre-delay before the direct sound is removed) and cut to the input length, as in the
    official chain.

    Args:
        x: ``(batch, 2, samples)``.
        ir: ``(batch, 2, ir_samples)`` impulse responses (zero-padded to a common length).
        dry_weight: ``(batch,)`` dry share ``w`` in [0, 1] (0 = fully wet).
    """
    _check_audio(x)
    if ir.ndim != 3 or ir.shape[0] != x.shape[0] or ir.shape[1] != 2:
        raise ValueError(f"expected impulse responses of shape ({x.shape[0]}, 2, L), got {tuple(ir.shape)}")
    n = x.shape[-1]
    ir = ir.to(device=x.device, dtype=x.dtype)
    # the output keeps n samples after the peak, so IR samples beyond peak + n never reach it
    ir = ir[..., : min(ir.shape[-1], int(ir_peaks(ir).max()) + n)]
    n_fft = fft_size(n + ir.shape[-1])
    wet = aligned_convolution(x, aligned_ir_spectra(ir, n_fft), n_fft)
    wet = match_rms(wet, x)
    w = _param(dry_weight, x).view(-1, 1, 1)
    return w * x + (1.0 - w) * wet


def drums_reverb(x: torch.Tensor, sample_rate: int, *, ir: torch.Tensor, dry_weight=None, backend: str = "auto") -> torch.Tensor:
    """The official drums routing: a fixed low-band blend, then reverb on the high band only.

    ``y = 0.8·x + 0.2·LP(x)``; ``z = 0.6·y + 0.4·reverb(HP(y))`` with LP/HP = −50 dB high/low
    shelves at 100 Hz and a fully wet, RMS-matched reverb (``dry_weight`` is ignored: the blend
    weights are fixed, as in the official code).
    """
    blend, high = drums_split(x, sample_rate, backend=backend)
    wet = convolution_reverb(high, sample_rate, ir=ir, dry_weight=0.0)
    return 0.6 * blend + 0.4 * wet


def drums_split(x: torch.Tensor, sample_rate: int, *, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The drums routing before the reverb: ``y = 0.8·x + 0.2·LP(x)`` and ``HP(y)`` RMS-matched to ``y``."""
    low = shelf_filter(x, sample_rate, kind="high_shelf", freq_hz=100.0, gain_db=-50.0, backend=backend)
    blend = 0.8 * x + 0.2 * match_rms(low, x)
    high = shelf_filter(blend, sample_rate, kind="low_shelf", freq_hz=100.0, gain_db=-50.0, backend=backend)
    return blend, match_rms(high, blend)
