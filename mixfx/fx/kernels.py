"""Compiled CPU kernels (numba) for the sequential parts of the FX chain.

Each kernel has an exact torch counterpart used on CUDA (and when numba is missing); tests check
that both agree. Kernels run rows in parallel (``prange``) with as many threads as torch uses.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

try:
    import numba

    @numba.njit(parallel=True, cache=True)
    def _biquad_cascade(x, sos, out):  # pragma: no cover - compiled
        # x: (rows, n) float32; sos: (rows, sections, 6) float64 [b0 b1 b2 a0 a1 a2], a0 == 1
        rows, n = x.shape
        sections = sos.shape[1]
        for i in numba.prange(rows):
            for t in range(n):
                out[i, t] = x[i, t]
            for s in range(sections):
                b0 = sos[i, s, 0]
                b1 = sos[i, s, 1]
                b2 = sos[i, s, 2]
                a1 = sos[i, s, 4]
                a2 = sos[i, s, 5]
                z1 = 0.0
                z2 = 0.0
                for t in range(n):
                    v = out[i, t]
                    y = b0 * v + z1
                    z1 = b1 * v - a1 * y + z2
                    z2 = b2 * v - a2 * y
                    out[i, t] = y
        return out

    @numba.njit(parallel=True, cache=True)
    def _compressor(x, thr, ratio, knee, a_att, a_rel, makeup, out):  # pragma: no cover - compiled
        rows, n = x.shape
        ln10_20 = np.log(10.0) / 20.0
        for i in numba.prange(rows):
            t_db = thr[i]
            slope = 1.0 / ratio[i] - 1.0
            w = knee[i]
            aa = a_att[i]
            ar = a_rel[i]
            mk = makeup[i]
            lower = t_db - w / 2.0
            y1 = 0.0
            y = 0.0
            for t in range(n):
                v = x[i, t]
                mag = abs(v)
                r = 0.0
                if mag > 1e-8:
                    lvl = 20.0 * np.log10(mag)
                    if lvl > lower:
                        over = lvl - t_db
                        if w > 0.0 and 2.0 * abs(over) <= w:
                            r = -slope * (over + w / 2.0) ** 2 / (2.0 * w)
                        elif 2.0 * over > w:
                            r = -slope * over
                hold = ar * y1 + (1.0 - ar) * r
                y1 = r if r > hold else hold
                y = aa * y + (1.0 - aa) * y1
                g = mk - y
                out[i, t] = v if g == 0.0 else v * np.exp(g * ln10_20)
        return out

    HAVE_NUMBA = True
except Exception as err:  # pragma: no cover - depends on the environment
    logger.info("numba unavailable (%s); CPU effects use the torch formulations", err)
    HAVE_NUMBA = False


def _sync_threads() -> None:
    want = min(numba.config.NUMBA_NUM_THREADS, max(1, torch.get_num_threads()))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def biquad_cascade(x: torch.Tensor, sos: torch.Tensor) -> torch.Tensor:
    """Filter rows through a per-row cascade of biquads (transposed direct form II, float64 state).

    Args:
        x: ``(rows, samples)`` float32 on CPU.
        sos: ``(rows, sections, 6)`` coefficients ``[b0, b1, b2, 1, a1, a2]``.
    """
    _sync_threads()
    xn = x.detach().to(torch.float32).contiguous().numpy()
    out = np.empty_like(xn)
    _biquad_cascade(xn, sos.detach().to("cpu", torch.float64).contiguous().numpy(), out)
    return torch.from_numpy(out)


def compressor_rows(x: torch.Tensor, thr, ratio, knee, a_att, a_rel, makeup) -> torch.Tensor:
    """Fused compressor over rows (level → static curve → ballistics → gain); see :func:`mixfx.fx.functional.compressor`."""
    _sync_threads()
    xn = x.detach().to(torch.float32).contiguous().numpy()
    out = np.empty_like(xn)
    args = [t.detach().to("cpu", torch.float64).contiguous().numpy() for t in (thr, ratio, knee, a_att, a_rel, makeup)]
    _compressor(xn, *args, out)
    return torch.from_numpy(out)
