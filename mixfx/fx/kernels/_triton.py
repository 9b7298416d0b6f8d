"""Triton kernels for the FX chain on CUDA (the counterparts of the numba CPU kernels).

* :func:`compressor_`: the whole compressor (level → static curve → smooth decoupled peak detector
  → gain) fused in one pass, in place. Each program walks one channel of one example in blocks;
  inside a block both ballistic recursions run as associative scans (:mod:`._scan`
  gives the algebra), and the block's last state carries into the next block. One pass over the
  audio instead of the ~40 full-size passes of the torch scan.
* :func:`multiply_biquad_response_`: multiplies rFFT spectra in place by each example's biquad
  cascade response, evaluated in float64 per bin (no response tensor is materialised).

With ``TRITON_INTERPRET=1`` in the environment before import, the same kernels run on CPU
tensors through Triton's interpreter (slow; used by the tests on machines without a GPU).
"""

from __future__ import annotations

import logging
import os

import torch

logger = logging.getLogger(__name__)

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
BLOCK = 128 if INTERPRET else 1024
"""Samples per block of the compressor scan and bins per program of the response kernel."""

try:
    import triton
    import triton.language as tl

    @triton.jit
    def _max_affine(m1, b1, c1, m2, b2, c2):
        # maps y -> max(m, b*y + c) with b > 0, composed "first then second"
        return tl.maximum(m2, b2 * m1 + c2), b2 * b1, b2 * c1 + c2

    @triton.jit
    def _affine(b1, c1, b2, c2):
        return b2 * b1, b2 * c1 + c2

    @triton.jit
    def _static_reduction_db(level, t_db, slope, w):
        # gain reduction (dB, ≥ 0) of the soft-knee static curve at level for threshold t_db, knee width w
        # and slope = 1/ratio − 1: this backend's one copy of
        # mixfx.fx.effects.compressor.static_reduction_db (tests/test_fx_compressor_curve.py holds it to it)
        over = level - t_db
        hard = tl.where(2.0 * over > w, -slope * over, 0.0)
        soft = -slope * (over + w / 2.0) * (over + w / 2.0) / (2.0 * tl.maximum(w, 1e-6))
        in_knee = 2.0 * tl.abs(over) <= tl.where(w > 0.0, w, -1.0)  # never inside a zero-width knee
        return tl.where(in_knee, soft, hard)

    @triton.jit
    def _compressor_kernel(x_ptr, rows_ptr, thr_ptr, ratio_ptr, knee_ptr, att_ptr, rel_ptr, makeup_ptr,
                           n, channels, BLOCK: tl.constexpr):
        j = tl.program_id(0)  # processed example
        ch = tl.program_id(1)
        row = tl.load(rows_ptr + j)  # int64: the offsets below are 64-bit
        base = x_ptr + (row * channels + ch) * n
        t_db = tl.load(thr_ptr + j)
        w = tl.load(knee_ptr + j)
        slope = 1.0 / tl.load(ratio_ptr + j) - 1.0
        aa = tl.load(att_ptr + j)
        ar = tl.load(rel_ptr + j)
        mk = tl.load(makeup_ptr + j)
        lower = t_db - w / 2.0
        idx = tl.arange(0, BLOCK)
        hold = 0.0
        smooth = 0.0
        for start in range(0, n, BLOCK):
            offs = start + idx
            mask = offs < n
            v = tl.load(base + offs, mask=mask, other=0.0)
            mag = tl.abs(v)
            level = 8.685889638065037 * tl.log(tl.maximum(mag, 1e-8))  # 20·log10
            r = _static_reduction_db(level, t_db, slope, w)
            r = tl.where(level > tl.maximum(lower, -160.0), r, 0.0)  # -160 dB = 20·log10(1e-8)
            # release: y1_t = max(r_t, ar·y1_{t-1} + (1 − ar)·r_t)
            m_s, b_s, c_s = tl.associative_scan((r, tl.full((BLOCK,), 1.0, tl.float32) * ar, (1.0 - ar) * r), 0, _max_affine)
            y1 = tl.maximum(m_s, b_s * hold + c_s)
            # attack: y_t = aa·y_{t-1} + (1 − aa)·y1_t
            b_a, c_a = tl.associative_scan((tl.full((BLOCK,), 1.0, tl.float32) * aa, (1.0 - aa) * y1), 0, _affine)
            y = b_a * smooth + c_a
            gain = tl.exp((mk - y) * 0.11512925464970229)  # ln(10)/20
            tl.store(base + offs, v * gain, mask=mask)
            last = idx == BLOCK - 1
            hold = tl.sum(tl.where(last, y1, 0.0), axis=0)
            smooth = tl.sum(tl.where(last, y, 0.0), axis=0)

    @triton.jit
    def _biquad_response_kernel(spec_ptr, b_ptr, a_ptr, n_bins, channels, sections, n_fft,
                                BLOCK: tl.constexpr):
        e = tl.program_id(0).to(tl.int64)  # example (64-bit: spectra can exceed 2^31 floats)
        k = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = k < n_bins
        w = k.to(tl.float64) * (6.283185307179586 / n_fft.to(tl.float64))
        c1, s1 = tl.cos(w), tl.sin(w)
        c2, s2 = c1 * c1 - s1 * s1, 2.0 * c1 * s1
        h_re = tl.full((BLOCK,), 1.0, tl.float64)
        h_im = tl.zeros((BLOCK,), tl.float64)
        for s in range(sections):
            o = (e * sections + s) * 3
            b0, b1, b2 = tl.load(b_ptr + o), tl.load(b_ptr + o + 1), tl.load(b_ptr + o + 2)
            a0, a1, a2 = tl.load(a_ptr + o), tl.load(a_ptr + o + 1), tl.load(a_ptr + o + 2)
            # H_s = (b0 + b1 z + b2 z²) / (a0 + a1 z + a2 z²), z = e^{-jw}
            n_re = b0 + b1 * c1 + b2 * c2
            n_im = -(b1 * s1 + b2 * s2)
            d_re = a0 + a1 * c1 + a2 * c2
            d_im = -(a1 * s1 + a2 * s2)
            den = d_re * d_re + d_im * d_im
            q_re = (n_re * d_re + n_im * d_im) / den
            q_im = (n_im * d_re - n_re * d_im) / den
            h_re, h_im = h_re * q_re - h_im * q_im, h_re * q_im + h_im * q_re
        hr = h_re.to(tl.float32)
        hi = h_im.to(tl.float32)
        for c in range(channels):
            p = spec_ptr + ((e * channels + c) * n_bins + k) * 2
            x_re = tl.load(p, mask=mask, other=0.0)
            x_im = tl.load(p + 1, mask=mask, other=0.0)
            tl.store(p, x_re * hr - x_im * hi, mask=mask)
            tl.store(p + 1, x_re * hi + x_im * hr, mask=mask)

    HAVE_TRITON = True
except Exception as err:  # pragma: no cover - depends on the environment
    logger.info("triton unavailable (%s); CUDA effects use the torch formulations", err)
    HAVE_TRITON = False


def available(x: torch.Tensor) -> bool:
    """Whether the Triton kernels can run on ``x`` (CUDA, or CPU under ``TRITON_INTERPRET=1``)."""
    return HAVE_TRITON and (x.is_cuda or INTERPRET)


def compressor_(x: torch.Tensor, rows: torch.Tensor, threshold_db, ratio, knee_db, attack_coef, release_coef,
                makeup_db, *, block: int = BLOCK) -> torch.Tensor:
    """Compress examples ``rows`` of ``x`` ``(batch, channels, n)`` float32 in place (per channel).

    Parameters are ``(k,)`` tensors, one per processed example; see
    :func:`mixfx.fx.effects.compressor.compressor` for the definition.
    """
    if not (x.is_contiguous() and x.dtype == torch.float32 and x.ndim == 3):
        raise ValueError("compressor_ works in place on contiguous (batch, channels, samples) float32 tensors")
    k = int(rows.numel())
    if k == 0:
        return x
    p = [torch.as_tensor(v, device=x.device).to(torch.float32).contiguous()
         for v in (threshold_db, ratio, knee_db, attack_coef, release_coef, makeup_db)]
    rows = rows.to(device=x.device, dtype=torch.int64).contiguous()
    _compressor_kernel[(k, x.shape[1])](x, rows, *p, x.shape[2], x.shape[1], BLOCK=block)
    return x


def multiply_biquad_response_(spec: torch.Tensor, b: torch.Tensor, a: torch.Tensor, n_fft: int,
                              *, block: int = BLOCK) -> torch.Tensor:
    """Multiply ``spec`` ``(batch, channels, n_fft//2+1)`` complex64 in place by each example's cascade.

    Args:
        b, a: ``(batch, sections, 3)`` biquad coefficients.
    """
    if spec.dtype != torch.complex64 or not spec.is_contiguous():
        raise ValueError("multiply_biquad_response_ needs a contiguous complex64 spectrum")
    batch, channels, n_bins = spec.shape
    b = b.to(device=spec.device, dtype=torch.float64).contiguous()
    a = a.to(device=spec.device, dtype=torch.float64).contiguous()
    grid = (batch, triton.cdiv(n_bins, block))
    _biquad_response_kernel[grid](torch.view_as_real(spec), b, a, n_bins, channels, b.shape[1], n_fft, BLOCK=block)
    return spec
