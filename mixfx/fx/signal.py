"""DSP primitives over batched tensors: dB helpers, RBJ biquads, frequency-domain filtering, FFT convolution.

Everything here is pure (no I/O), works on any device and keeps the input dtype. Audio is
``(batch, channels, samples)``; per-example parameters are ``(batch,)`` tensors.
"""

from __future__ import annotations

import math

import torch

from mixfx.fx import kernels
from mixfx.fx.kernels import Backend, _numba, _triton

EPS = 1e-8


def db_to_amplitude(db: torch.Tensor | float) -> torch.Tensor:
    r"""Amplitude ratio of a level in dB: :math:`10^{db/20}`."""
    return torch.pow(10.0, torch.as_tensor(db) / 20.0)


def amplitude_to_db(x: torch.Tensor, floor: float = EPS) -> torch.Tensor:
    r"""Level in dB of an amplitude: :math:`20 \log_{10}\max(|x|, floor)`."""
    return 20.0 * torch.log10(x.abs().clamp_min(floor))


POWER_FLOOR = 1e-7
"""Floor of the output power in the level renormalisation (:func:`match_rms`)."""


def mean_power(x: torch.Tensor, *, keepdim: bool = False) -> torch.Tensor:
    """Mean of ``x²`` over the last two axes (channels and samples) of each example."""
    return torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=keepdim).square() / (x.shape[-1] * x.shape[-2])


def match_rms(y: torch.Tensor, reference: torch.Tensor, floor: float = POWER_FLOOR) -> torch.Tensor:
    """Rescale ``y`` so that its RMS (over channels and samples) equals that of ``reference``.

    This is the level-preserving renormalisation the official FXmanipulator applies after every
    effect except the loudness gain: ``scale = sqrt(mean(x²) / max(floor, mean(y²)))``.
    """
    return y * torch.sqrt(mean_power(reference, keepdim=True) / mean_power(y, keepdim=True).clamp_min(floor))


def next_fast_length(n: int) -> int:
    """Smallest 2^a·3^b·5^c ≥ n (FFT-friendly length)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


# ----------------------------------------------------------------------------------------- biquads

BIQUAD_KINDS = ("peak", "low_shelf", "high_shelf", "low_pass", "high_pass")


def biquad_coefficients(
    kind: str,
    freq_hz: torch.Tensor,
    gain_db: torch.Tensor,
    q: torch.Tensor,
    sample_rate: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""RBJ Audio-EQ-Cookbook biquad coefficients, one filter per batch item.

    Args:
        kind: one of ``peak``, ``low_shelf``, ``high_shelf``, ``low_pass``, ``high_pass``.
        freq_hz: centre / corner frequency, ``(batch,)``.
        gain_db: gain for peak and shelves (ignored by pass filters), ``(batch,)``.
        q: quality factor, ``(batch,)`` (shelves use the cookbook's Q form; 0.707 ≈ slope 1).
        sample_rate: in Hz.

    Returns:
        ``(b, a)``, each ``(batch, 3)``, normalised so that ``a[:, 0] == 1``.

    References:
        R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients".
    """
    if kind not in BIQUAD_KINDS:
        raise ValueError(f"unknown biquad kind {kind!r}; expected one of {BIQUAD_KINDS}")
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cos_w0, sin_w0 = torch.cos(w0), torch.sin(w0)
    alpha = sin_w0 / (2.0 * q)
    big_a = torch.pow(10.0, gain_db / 40.0)
    one = torch.ones_like(w0)
    if kind == "peak":
        b = [1 + alpha * big_a, -2 * cos_w0, 1 - alpha * big_a]
        a = [1 + alpha / big_a, -2 * cos_w0, 1 - alpha / big_a]
    elif kind in ("low_shelf", "high_shelf"):
        sq = 2.0 * torch.sqrt(big_a) * alpha
        ap, am = big_a + 1, big_a - 1
        if kind == "low_shelf":
            b = [big_a * (ap - am * cos_w0 + sq), 2 * big_a * (am - ap * cos_w0), big_a * (ap - am * cos_w0 - sq)]
            a = [ap + am * cos_w0 + sq, -2 * (am + ap * cos_w0), ap + am * cos_w0 - sq]
        else:
            b = [big_a * (ap + am * cos_w0 + sq), -2 * big_a * (am + ap * cos_w0), big_a * (ap + am * cos_w0 - sq)]
            a = [ap - am * cos_w0 + sq, 2 * (am - ap * cos_w0), ap - am * cos_w0 - sq]
    elif kind == "low_pass":
        b = [(1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    else:
        b = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    b_t = torch.stack([c * one for c in b], dim=-1)
    a_t = torch.stack([c * one for c in a], dim=-1)
    return b_t / a_t[..., :1], a_t / a_t[..., :1]


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    r"""Complex frequency response :math:`H(e^{j\omega}) = B(e^{j\omega}) / A(e^{j\omega})` on the rfft grid.

    Args:
        b, a: ``(batch, 3)`` biquad coefficients.
        n_fft: FFT length; the response is sampled at ``n_fft // 2 + 1`` bins.

    Returns:
        Complex tensor ``(batch, n_fft // 2 + 1)``.
    """
    dtype = torch.float64 if b.dtype == torch.float64 else torch.float32
    w = torch.linspace(0, math.pi, n_fft // 2 + 1, device=b.device, dtype=dtype)
    z1 = torch.polar(torch.ones_like(w), -w)  # e^{-jw}
    z2 = z1 * z1
    bc, ac = b.to(dtype), a.to(dtype)
    num = bc[:, 0:1] + bc[:, 1:2] * z1 + bc[:, 2:3] * z2
    den = ac[:, 0:1] + ac[:, 1:2] * z1 + ac[:, 2:3] * z2
    return num / den


def biquad_filter(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, tail: int,
                  backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """Filter ``(batch, channels, samples)`` audio through a per-example cascade of biquads.

    Two exact formulations: in time (transposed direct form II, float64 state, compiled; used on
    CPU) or as the cascade's frequency response on a zero-padded FFT grid (used on CUDA), which
    equals the IIR output once the impulse response has decayed within ``tail`` samples.

    Args:
        x: ``(batch, channels, samples)``.
        b, a: ``(batch, sections, 3)`` coefficients with ``a[..., 0] == 1``.
        tail: zero padding of the FFT formulation, in samples.
        backend: see :class:`mixfx.fx.kernels.Backend` (numba: in time; triton, torch: FFT).
    """
    family = kernels.resolve(x, backend)
    if family is Backend.NUMBA:
        y = x.to(torch.float32, copy=True).contiguous()
        _numba.biquad_cascade_(y, torch.arange(x.shape[0]), b, a)
        return y.to(x.dtype)
    n = x.shape[-1]
    n_fft = next_fast_length(n + tail)
    spec = torch.fft.rfft(x, n=n_fft)
    if family is Backend.TRITON and spec.dtype == torch.complex64:
        _triton.multiply_biquad_response_(spec, b, a, n_fft)
    else:
        h = biquad_response(b[:, 0], a[:, 0], n_fft)
        for s in range(1, b.shape[1]):
            h = h * biquad_response(b[:, s], a[:, s], n_fft)
        spec = spec * h.to(spec.dtype).unsqueeze(1)
    return torch.fft.irfft(spec, n=n_fft)[..., :n]


