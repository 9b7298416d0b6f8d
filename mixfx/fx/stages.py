"""The chain's stages: effects applied in place to a subset of the batch, renormalisation fused in.

The FXmanipulator (:mod:`mixfx.fx.chain`) applies each effect to the examples that drew it and
then rescales them to their input RMS (the official level renormalisation). Done naively, every
effect costs a gather, a new output, two norms, a rescaled copy and a scatter over the whole
batch. These stages do the same arithmetic with as few passes over the audio as possible:

* :func:`equalize_`, :func:`compress_`: in place on the chosen examples; on CPU one numba call
  filters and renormalises each example (no temporary audio), on CUDA Triton kernels
  (:mod:`mixfx.fx.gpu_kernels`) or plain torch.
* :func:`pan_and_image_`: pan and stereo imager (either order) and their renormalisations as
  one per-example mid/side transform, from five energy sums (:func:`stereo_gains`).
* :func:`reverb_and_gain_`: plain and drums-routed reverbs in one batched FFT convolution with
  cached IR spectra (:class:`mixfx.fx.convolution.IRSpectra`), then the loudness gain.

Each stage equals the composition of the textbook effects in :mod:`mixfx.fx.functional` with
:func:`mixfx.fx.signal.match_rms` (tests check it to 1e-4 of full scale).
"""

from __future__ import annotations

import torch

from mixfx.fx import functional as F
from mixfx.fx import kernels
from mixfx.fx.convolution import IRSpectra
from mixfx.fx.signal import POWER_FLOOR, kernel_family, match_rms


def _rows(mask: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(mask).flatten()


def _apply_to_rows_(y: torch.Tensor, rows: torch.Tensor, fn, *, renormalize: bool) -> torch.Tensor:
    """Out-of-place fallback: ``y[rows] = renorm(fn(y[rows]))`` with one gather and one scatter."""
    whole = rows.numel() == y.shape[0]
    sub = y if whole else y.index_select(0, rows)
    out = fn(sub)
    if renormalize:
        out = match_rms(out, sub)
    if whole:
        return y.copy_(out)
    return y.index_copy_(0, rows, out.to(y.dtype))


# --------------------------------------------------------------------------------------- EQ, compressor


def equalize_(y: torch.Tensor, mask: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, sample_rate: int,
              renormalize: bool = True, backend: str = "auto") -> torch.Tensor:
    """Filter the examples where ``mask`` is set through their biquad cascades ``b, a`` ``(batch, sections, 3)``, in place."""
    rows = _rows(mask)
    if rows.numel() == 0:
        return y
    bs, as_ = b.index_select(0, rows.to(b.device)), a.index_select(0, rows.to(a.device))
    if kernel_family(y, backend) == "numba":
        return kernels.biquad_cascade_(y, rows, bs, as_, renormalize=renormalize, floor=POWER_FLOOR)
    tail = int(0.1 * sample_rate)
    return _apply_to_rows_(y, rows, lambda s: F.biquad_filter(s, bs, as_, tail=tail, backend=backend),
                           renormalize=renormalize)


def compress_(y: torch.Tensor, mask: torch.Tensor, *, sample_rate: int, threshold_db: torch.Tensor,
              ratio: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor, knee_db: torch.Tensor,
              renormalize: bool = True, backend: str = "auto") -> torch.Tensor:
    """Compress the examples where ``mask`` is set (parameters ``(batch,)``), in place."""
    rows = _rows(mask)
    if rows.numel() == 0:
        return y
    family = kernel_family(y, backend)
    pick = lambda v: v.index_select(0, rows.to(v.device))  # noqa: E731
    params = dict(threshold_db=pick(threshold_db), ratio=pick(ratio), attack_ms=pick(attack_ms),
                  release_ms=pick(release_ms), knee_db=pick(knee_db))
    if family in ("numba", "triton"):
        return F.compress_rows_(y, rows, sample_rate, family=family, makeup_db=torch.zeros(rows.numel()),
                                renormalize=renormalize, **params)
    return _apply_to_rows_(y, rows, lambda s: F.compressor(s, sample_rate, backend=backend, **params),
                           renormalize=renormalize)


# --------------------------------------------------------------------------------------- pan and imager


def stereo_stats(y: torch.Tensor, pre_l: torch.Tensor, pre_r: torch.Tensor) -> torch.Tensor:
    r"""Energy sums for :func:`stereo_gains`, ``(batch, 5)`` float64.

    With :math:`u = (g_L L, g_R R)` the input after the first panner (gains ``pre_l, pre_r``;
    1 where none), :math:`m = u_L + u_R`, :math:`s = u_L - u_R`: the columns are
    :math:`\sum L^2, \sum R^2, \sum m^2, \sum s^2, \sum m s` over samples. (On CPU the numba
    kernel :func:`mixfx.fx.kernels.stereo_stats` computes the same sums in float64.)
    """
    ul = y[:, 0] * pre_l.to(y.dtype).view(-1, 1)
    ur = y[:, 1] * pre_r.to(y.dtype).view(-1, 1)
    m, s = ul + ur, ul - ur
    sums = [y[:, 0].square().sum(-1), y[:, 1].square().sum(-1), m.square().sum(-1), s.square().sum(-1), (m * s).sum(-1)]
    return torch.stack(sums, dim=-1).double()


def stereo_gains(stats: torch.Tensor, n: int, *, pan_first: torch.Tensor, imager_on: torch.Tensor,
                 pan_after: torch.Tensor, pan_l: torch.Tensor, pan_r: torch.Tensor, width: torch.Tensor
                 ) -> tuple[torch.Tensor, ...]:
    r"""Per-example gains of pan → imager → pan with the renormalisation after each applied effect.

    The chain's sequence "first panner (``pan_first``), imager (``imager_on``), second panner
    (``pan_after``), each followed by ``match_rms``" is one transform

    .. math::
        u = (p_L L, p_R R),\quad m = u_L + u_R,\ s = u_L - u_R,\quad
        y = k\,\bigl(q_L (g_m m + g_s s)/2,\ q_R (g_m m - g_s s)/2\bigr)

    whose gains follow from the energy sums of :func:`stereo_stats` (powers of each
    intermediate signal are quadratic forms of those sums), so the audio is read twice and
    written once. Returns ``(p_L, p_R, g_m, g_s, q_L·k, q_R·k)``, each ``(batch,)`` float64.
    """
    ll, rr, em, es, ems = stats.unbind(-1)
    count = 2.0 * n
    one = torch.ones_like(ll)
    dev = stats.device
    pan_first, imager_on, pan_after = pan_first.to(dev), imager_on.to(dev), pan_after.to(dev)
    pan_l, pan_r, width = pan_l.to(dev, torch.float64), pan_r.to(dev, torch.float64), width.to(dev, torch.float64)
    pre_l, pre_r = torch.where(pan_first, pan_l, one), torch.where(pan_first, pan_r, one)
    # first panner: power before / after
    power = (ll + rr) / count
    u_power = (pre_l.square() * ll + pre_r.square() * rr) / count
    scale = torch.where(pan_first, torch.sqrt(power / u_power.clamp_min(POWER_FLOOR)), one)
    power = torch.where(pan_first, scale.square() * u_power, power)
    # imager on scale·u: its gains are scale-invariant up to the clamps of silent input, which see scale²·energy
    em_in, es_in = scale.square() * em, scale.square() * es
    side_gain = F.imager_side_gain(em_in, es_in, width)
    new_side = es_in * side_gain.square()
    mid_gain = torch.sqrt(((em_in + es_in) - new_side).clamp_min(0) / em_in.clamp_min(1e-12))
    g_m, g_s = torch.where(imager_on, mid_gain, one), torch.where(imager_on, side_gain, one)
    img_l = (g_m.square() * em + g_s.square() * es + 2 * g_m * g_s * ems) / 4  # Σ of the imager's L², per unit scale
    img_r = (g_m.square() * em + g_s.square() * es - 2 * g_m * g_s * ems) / 4
    img_power = scale.square() * (img_l + img_r) / count
    scale = torch.where(imager_on, scale * torch.sqrt(power / img_power.clamp_min(POWER_FLOOR)), scale)
    # the renormalised imager output keeps the power, unless it was under the floor
    power = torch.where(imager_on, scale.square() * (img_l + img_r) / count, power)
    # second panner
    post_l, post_r = torch.where(pan_after, pan_l, one), torch.where(pan_after, pan_r, one)
    out_power = scale.square() * (post_l.square() * img_l + post_r.square() * img_r) / count
    scale = torch.where(pan_after, scale * torch.sqrt(power / out_power.clamp_min(POWER_FLOOR)), scale)
    return pre_l, pre_r, g_m, g_s, post_l * scale, post_r * scale


def pan_and_image_(y: torch.Tensor, *, pan_on: torch.Tensor, pan_first: torch.Tensor, imager_on: torch.Tensor,
                   pan: torch.Tensor, pan_law: torch.Tensor, width: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Apply the panner and the imager (each renormalised, per-example order) in place."""
    dev = y.device
    pan_on, pan_first, imager_on = pan_on.to(dev), pan_first.to(dev), imager_on.to(dev)
    rows = _rows(pan_on | imager_on)
    if rows.numel() == 0:
        return y
    whole = rows.numel() == y.shape[0]
    sel = (lambda v: v.to(dev)) if whole else (lambda v: v.to(dev).index_select(0, rows))  # noqa: E731
    g_l, g_r = F.pan_gains(sel(pan).double(), sel(pan_law))
    first, after, imager_on = sel(pan_on & pan_first), sel(pan_on & ~pan_first), sel(imager_on)
    one = torch.ones_like(g_l)
    pre_l, pre_r = torch.where(first, g_l, one), torch.where(first, g_r, one)
    numba = kernel_family(y, backend) == "numba"
    sub = y if (numba or whole) else y.index_select(0, rows)
    if numba:
        stats = torch.from_numpy(kernels.stereo_stats(y, rows, pre_l, pre_r))
    else:
        stats = stereo_stats(sub, pre_l, pre_r)
    gains = stereo_gains(stats.to(dev), y.shape[-1], pan_first=first, imager_on=imager_on, pan_after=after,
                         pan_l=g_l, pan_r=g_r, width=sel(width))
    if numba:
        kernels.stereo_apply_(y, rows, *gains)
        return y
    pre_l, pre_r, g_m, g_s, post_l, post_r = [g.to(y.dtype).view(-1, 1) for g in gains]
    ul, ur = sub[:, 0] * pre_l, sub[:, 1] * pre_r
    m, s = (ul + ur).mul_(g_m), (ul - ur).mul_(g_s)
    sub[:, 0] = (m + s).mul_(post_l / 2)
    sub[:, 1] = (m - s).mul_(post_r / 2)
    return y if whole else y.index_copy_(0, rows, sub)


# --------------------------------------------------------------------------------------- reverb and gain


def reverb_and_gain_(y: torch.Tensor, *, sample_rate: int, spectra: IRSpectra, reverb_on: torch.Tensor,
                     drums: torch.Tensor, ir_index: torch.Tensor, dry_weight: torch.Tensor,
                     gain_on: torch.Tensor, gain_db: torch.Tensor, invert: torch.Tensor,
                     backend: str = "auto") -> torch.Tensor:
    """The reverb (plain send, or the official drums routing where ``drums``) and the loudness gain.

    ``y`` is overwritten; use the returned tensor (a new one when every example is reverberated).

    All reverberated examples share one FFT convolution; see :func:`mixfx.fx.functional.convolution_reverb`
    and :func:`mixfx.fx.functional.drums_reverb` for the definitions.
    """
    dev = y.device
    reverb_on, drums = reverb_on.to(dev), drums.to(dev)
    rows = _rows(reverb_on)
    if rows.numel():
        whole = rows.numel() == y.shape[0]
        dry = y if whole else y.index_select(0, rows)
        source = dry  # what the IR convolves
        is_drum = drums.index_select(0, rows)
        weight = dry_weight.to(dev).index_select(0, rows).to(torch.float32)
        mix_dry, mix_wet = weight, 1.0 - weight
        if bool(is_drum.any()):
            d = _rows(is_drum)
            low_blend, high = F.drums_split(dry.index_select(0, d), sample_rate, backend=backend)
            source = dry.clone().index_copy_(0, d, high)
            dry.index_copy_(0, d, low_blend)  # dry is y itself or a gathered copy: ours to change
            mix_dry = torch.where(is_drum, torch.full_like(weight, 0.6), mix_dry)
            mix_wet = torch.where(is_drum, torch.full_like(weight, 0.4), mix_wet)
        wet = spectra.convolve(source, ir_index.to(dev).index_select(0, rows))
        wet = match_rms(wet, source)
        out = wet.mul_(mix_wet.view(-1, 1, 1)).add_(dry * mix_dry.view(-1, 1, 1))
        if whole:
            y = out
        else:
            y.index_copy_(0, rows, out)
    gain_on = gain_on.to(dev)
    if bool(gain_on.any()):
        amp = F.gain_factor(gain_db.to(dev, torch.float32), invert.to(dev))
        y.mul_(torch.where(gain_on, amp, torch.ones_like(amp)).to(y.dtype).view(-1, 1, 1))
    return y
