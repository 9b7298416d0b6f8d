"""Compiled CPU kernels (numba) for the sequential parts of the FX chain.

They work **in place** on the examples ``rows`` of a ``(batch, channels, samples)`` float32 array
and can renormalise each processed example to its input RMS (the chain's level renormalisation)
in the same call, so the chain allocates no temporary audio for them. Channels are filtered two
at a time in one loop (two independent recursions give the CPU's pipelines twice the work).
Examples run in parallel (``prange``) with as many threads as torch uses.

Each kernel has an exact torch counterpart used on CUDA (:mod:`._triton`, or plain torch when
Triton is missing); tests check that all agree. Only the effects (:mod:`mixfx.fx.effects`) call them.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)

try:
    import numba

    @numba.njit(cache=True, inline="always")
    def _power(x, b):  # pragma: no cover - compiled
        p = 0.0
        for c in range(x.shape[1]):
            for t in range(x.shape[2]):
                p += np.float64(x[b, c, t]) * x[b, c, t]
        return p

    @numba.njit(cache=True, inline="always")
    def _renormalise(x, b, p_in, floor):  # pragma: no cover - compiled
        # match_rms: scale = sqrt(mean(x²) / max(floor, mean(y²))), means over channels and samples
        count = x.shape[1] * x.shape[2]
        p_out = _power(x, b) / count
        scale = np.float32(np.sqrt((p_in / count) / max(floor, p_out)))
        for c in range(x.shape[1]):
            for t in range(x.shape[2]):
                x[b, c, t] *= scale

    @numba.njit(parallel=True, cache=True)
    def _biquad_cascade(x, rows, sos, renorm, floor):  # pragma: no cover - compiled
        # x: (batch, channels, n) float32, in place; rows: (k,) int64; sos: (k, sections, 6) float64
        # [b0 b1 b2 a0 a1 a2] with a0 == 1; transposed direct form II, float64 state
        channels, n = x.shape[1], x.shape[2]
        for j in numba.prange(rows.shape[0]):
            b = rows[j]
            p_in = _power(x, b) if renorm else 0.0
            for s in range(sos.shape[1]):
                b0, b1, b2 = sos[j, s, 0], sos[j, s, 1], sos[j, s, 2]
                a1, a2 = sos[j, s, 4], sos[j, s, 5]
                c = 0
                while c < channels:
                    if c + 1 < channels:  # two channels per loop: independent recursions interleave
                        u1 = u2 = w1 = w2 = 0.0
                        for t in range(n):
                            v = np.float64(x[b, c, t])
                            q = np.float64(x[b, c + 1, t])
                            y = b0 * v + u1
                            z = b0 * q + w1
                            u1 = b1 * v - a1 * y + u2
                            w1 = b1 * q - a1 * z + w2
                            u2 = b2 * v - a2 * y
                            w2 = b2 * q - a2 * z
                            x[b, c, t] = y
                            x[b, c + 1, t] = z
                        c += 2
                    else:
                        u1 = u2 = 0.0
                        for t in range(n):
                            v = np.float64(x[b, c, t])
                            y = b0 * v + u1
                            u1 = b1 * v - a1 * y + u2
                            u2 = b2 * v - a2 * y
                            x[b, c, t] = y
                        c += 1
            if renorm:
                _renormalise(x, b, p_in, floor)

    @numba.njit(cache=True, inline="always")
    def _static_reduction_db(level_db, t_db, slope, w):  # pragma: no cover - compiled
        # gain reduction (dB, ≥ 0) of the soft-knee static curve at level_db for threshold t_db, knee
        # width w and slope = 1/ratio − 1: this backend's one copy of
        # mixfx.fx.effects.compressor.static_reduction_db (tests/test_fx_compressor_curve.py holds it to it)
        over = level_db - t_db
        if w > 0.0 and 2.0 * abs(over) <= w:
            return -slope * (over + w / 2.0) ** 2 / (2.0 * w)
        if 2.0 * over > w:
            return -slope * over
        return 0.0

    @numba.njit(cache=True, inline="always")
    def _reduction_db(mag, lower_lin, t_db, slope, w):  # pragma: no cover - compiled
        # the static curve of a sample magnitude; 0 at or below lower_lin = 10^((T − W/2)/20), no log needed
        if mag <= lower_lin:
            return 0.0
        return _static_reduction_db(20.0 * np.float64(np.log10(np.float32(mag))), t_db, slope, w)

    @numba.njit(cache=True, inline="always")
    def _compressor_step(sample, hold, smooth, lower_lin, t_db, slope, w, aa, ar, mk):  # pragma: no cover - compiled
        # one sample of one channel: gain reduction, smooth decoupled peak detector, gain; the log and
        # the exp in float32 (the audio's precision, and faster), the recursion in float64
        v = np.float64(sample)
        r = _reduction_db(abs(v), lower_lin, t_db, slope, w)
        released = ar * hold + (1.0 - ar) * r
        hold = r if r > released else released
        smooth = aa * smooth + (1.0 - aa) * hold
        g = mk - smooth
        out = sample if g == 0.0 else sample * np.exp(np.float32(g * 0.11512925464970229))  # ln(10)/20
        return out, hold, smooth

    @numba.njit(parallel=True, cache=True)
    def _compressor(x, rows, thr, ratio, knee, a_att, a_rel, makeup, renorm, floor):  # pragma: no cover - compiled
        # x: (batch, channels, n) float32, in place; per-example parameters (k,) float64
        channels, n = x.shape[1], x.shape[2]
        for j in numba.prange(rows.shape[0]):
            b = rows[j]
            p_in = _power(x, b) if renorm else 0.0
            t_db, w = thr[j], knee[j]
            slope = 1.0 / ratio[j] - 1.0
            # below max(1e-8, 10^((T − W/2)/20)) the level is under the knee: no log needed
            lower_lin = max(1e-8, np.exp((t_db - w / 2.0) * 0.11512925464970229))
            aa, ar, mk = a_att[j], a_rel[j], makeup[j]
            c = 0
            while c < channels:
                pair = c + 1 < channels
                h1 = s1 = h2 = s2 = 0.0  # release (peak hold) and attack states of both channels
                for t in range(n):
                    x[b, c, t], h1, s1 = _compressor_step(x[b, c, t], h1, s1, lower_lin, t_db, slope, w, aa, ar, mk)
                    if pair:
                        x[b, c + 1, t], h2, s2 = _compressor_step(x[b, c + 1, t], h2, s2, lower_lin, t_db, slope, w,
                                                                  aa, ar, mk)
                c += 2 if pair else 1
            if renorm:
                _renormalise(x, b, p_in, floor)

    @numba.njit(parallel=True, cache=True)
    def _stereo_stats(x, rows, pre_l, pre_r, out):  # pragma: no cover - compiled
        # out[j] = [ΣL², ΣR², Σm², Σs², Σms] of example rows[j], with u = (pre_l·L, pre_r·R), m = u_L + u_R, s = u_L − u_R
        n = x.shape[2]
        for j in numba.prange(rows.shape[0]):
            b = rows[j]
            gl, gr = pre_l[j], pre_r[j]
            ll = rr = mm = ss = ms = 0.0
            for t in range(n):
                left = np.float64(x[b, 0, t])
                right = np.float64(x[b, 1, t])
                ul = np.float64(np.float32(gl * left))
                ur = np.float64(np.float32(gr * right))
                m = np.float64(np.float32(ul + ur))
                s = np.float64(np.float32(ul - ur))
                ll += left * left
                rr += right * right
                mm += m * m
                ss += s * s
                ms += m * s
            out[j, 0], out[j, 1], out[j, 2], out[j, 3], out[j, 4] = ll, rr, mm, ss, ms
        return out

    @numba.njit(parallel=True, cache=True)
    def _stereo_apply(x, rows, pre_l, pre_r, g_m, g_s, post_l, post_r):  # pragma: no cover - compiled
        n = x.shape[2]
        for j in numba.prange(rows.shape[0]):
            b = rows[j]
            a, c = pre_l[j], pre_r[j]
            gm, gs = g_m[j], g_s[j]
            ql, qr = post_l[j] / 2.0, post_r[j] / 2.0
            for t in range(n):
                ul = np.float32(a * x[b, 0, t])
                ur = np.float32(c * x[b, 1, t])
                m = gm * np.float32(ul + ur)
                s = gs * np.float32(ul - ur)
                x[b, 0, t] = ql * (m + s)
                x[b, 1, t] = qr * (m - s)

    HAVE_NUMBA = True
except Exception as err:  # pragma: no cover - depends on the environment
    logger.info("numba unavailable (%s); CPU effects use the torch formulations", err)
    HAVE_NUMBA = False


def _sync_threads() -> None:
    want = min(numba.config.NUMBA_NUM_THREADS, max(1, torch.get_num_threads()))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def _writable_view(x: torch.Tensor) -> np.ndarray:
    if x.device.type != "cpu" or x.dtype != torch.float32 or not x.is_contiguous() or x.ndim != 3:
        raise ValueError("CPU kernels work in place on contiguous (batch, channels, samples) float32 tensors")
    return x.detach().numpy()


def _per_example(v: torch.Tensor) -> np.ndarray:
    return v.detach().to("cpu", torch.float64).contiguous().numpy()


def biquad_cascade_(x: torch.Tensor, rows: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *,
                    renormalize: bool = False, floor: float = 1e-7) -> torch.Tensor:
    """Filter examples ``rows`` of ``x`` in place through their own cascade of biquads.

    Args:
        x: ``(batch, channels, samples)`` contiguous float32 on CPU (modified).
        rows: ``(k,)`` example indices.
        b, a: ``(k, sections, 3)`` coefficients of each processed example, ``a[..., 0] == 1``.
        renormalize: rescale each processed example to its input RMS (see :func:`mixfx.fx.signal.match_rms`).
    """
    _sync_threads()
    sos = _per_example(torch.cat([b, a], dim=-1))
    _biquad_cascade(_writable_view(x), _per_example(rows).astype(np.int64), sos, renormalize, floor)
    return x


def compressor_(x: torch.Tensor, rows: torch.Tensor, threshold_db, ratio, knee_db, attack_coef, release_coef,
                makeup_db, *, renormalize: bool = False, floor: float = 1e-7) -> torch.Tensor:
    """Compress examples ``rows`` of ``x`` in place (level → static curve → ballistics → gain).

    Each channel is compressed on its own (unlinked); the parameters are ``(k,)`` tensors, one
    per processed example. See :func:`mixfx.fx.effects.compressor.compressor` for the definition.
    """
    _sync_threads()
    params = [_per_example(v) for v in (threshold_db, ratio, knee_db, attack_coef, release_coef, makeup_db)]
    _compressor(_writable_view(x), _per_example(rows).astype(np.int64), *params, renormalize, floor)
    return x


def stereo_stats(x: torch.Tensor, rows: torch.Tensor, pre_l: torch.Tensor, pre_r: torch.Tensor) -> np.ndarray:
    """Energy sums of :func:`mixfx.fx.effects.stereo.stereo_stats` for examples ``rows``, ``(k, 5)`` float64.

    ``pre_l, pre_r``: ``(k,)`` gains of the processed examples.
    """
    _sync_threads()
    out = np.zeros((rows.numel(), 5))
    return _stereo_stats(_writable_view(x), _per_example(rows).astype(np.int64), _per_example(pre_l),
                         _per_example(pre_r), out)


def stereo_apply_(x: torch.Tensor, rows: torch.Tensor, pre_l, pre_r, g_m, g_s, post_l, post_r) -> torch.Tensor:
    """In place, for examples ``rows``: ``u = (pre_l·L, pre_r·R)``; ``L, R = post_l·(g_m·m + g_s·s)/2, post_r·(g_m·m − g_s·s)/2``."""
    _sync_threads()
    gains = [_per_example(v) for v in (pre_l, pre_r, g_m, g_s, post_l, post_r)]
    _stereo_apply(_writable_view(x), _per_example(rows).astype(np.int64), *gains)
    return x
