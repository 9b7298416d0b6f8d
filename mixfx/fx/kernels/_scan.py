"""Compressor ballistics as an associative scan in plain torch (any device, no Python loop over samples).

The recursion (Giannoulis, Massberg & Reiss, 2012, "smooth decoupled" detector), applied to the
gain reduction ``r[n] ≥ 0`` (dB) of each row::

    y1[n] = max(r[n], a_r · y1[n-1] + (1 - a_r) · r[n])      # release (peak hold with decay)
    y[n]  = a_a · y[n-1] + (1 - a_a) · y1[n]                 # attack (one-pole smoothing)

The numba kernel (:mod:`._numba`) runs this recursion sample by sample.
Here is its exact parallel form for CUDA (and the CPU fallback without numba): an associative
(Hillis–Steele) scan in plain torch. Both steps are compositions of maps ``y ↦ max(m, b·y + c)`` (``b > 0``), a family
  closed under composition: ``f2∘f1 = (max(m2, b2·m1 + c2), b2·b1, b2·c1 + c2)``, so the
  recursion has an exact parallel form.

References:
    D. Giannoulis, M. Massberg, J. D. Reiss, "Digital Dynamic Range Compressor Design — A
    Tutorial and Analysis", J. Audio Eng. Soc. 60(6), 2012.
"""

from __future__ import annotations

import math

import torch


def smooth_gain_reduction(r: torch.Tensor, a_attack: torch.Tensor, a_release: torch.Tensor) -> torch.Tensor:
    """Run the smooth decoupled peak detector over each row of ``r`` (parallel scan).

    Args:
        r: ``(rows, samples)`` non-negative gain reduction in dB.
        a_attack, a_release: ``(rows,)`` one-pole coefficients in [0, 1).

    Returns:
        ``(rows, samples)`` smoothed gain reduction, same dtype and device.
    """
    ar = a_release.to(r.dtype).unsqueeze(-1)
    aa = a_attack.to(r.dtype).unsqueeze(-1)
    # release stage: f_n(y) = max(r_n, ar*y + (1-ar)*r_n)
    y1 = _max_affine_scan(m=r, b=ar.expand_as(r), c=(1.0 - ar) * r)
    # attack stage: g_n(y) = aa*y + (1-aa)*y1_n   (m = -inf: purely affine)
    return _max_affine_scan(m=None, b=aa.expand_as(r), c=(1.0 - aa) * y1)


def _max_affine_scan(m: torch.Tensor | None, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Inclusive scan of ``y_n = max(m_n, b_n·y_{n-1} + c_n)`` from ``y_{-1} = 0`` (Hillis–Steele)."""
    n = b.shape[-1]
    b, c = b.clone(), c.clone()
    m = None if m is None else m.clone()
    steps = int(math.ceil(math.log2(max(n, 2))))
    for k in range(steps):
        d = 1 << k
        if d >= n:
            break
        b_prev, c_prev = b[..., :-d], c[..., :-d]
        b_cur, c_cur = b[..., d:], c[..., d:]
        new_c = b_cur * c_prev + c_cur
        if m is not None:
            new_m = torch.maximum(m[..., d:], b_cur * m[..., :-d] + c_cur)
            m = torch.cat([m[..., :d], new_m], dim=-1)
        c = torch.cat([c[..., :d], new_c], dim=-1)
        b = torch.cat([b[..., :d], b_cur * b_prev], dim=-1)
    return c if m is None else torch.maximum(m, c)
