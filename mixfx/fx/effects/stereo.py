"""The chain's fused stereo stage: panner and imager (either order), each renormalised, in one transform.

Done one effect at a time, pan → renormalise → imager → renormalise → pan costs several passes
over the audio. Every intermediate power is a quadratic form of five energy sums
(:func:`stereo_stats`), so the gains of the whole sequence follow from them
(:func:`stereo_gains`) and the audio is read twice and written once (:func:`pan_and_image_`).
The effects themselves are :func:`mixfx.fx.effects.panner.pan` and
:func:`mixfx.fx.effects.imager.stereo_imager`; tests check the stage against their composition.
"""

from __future__ import annotations

import torch

from mixfx.fx import kernels
from mixfx.fx.effects._batch import rows_of
from mixfx.fx.effects.imager import imager_gains
from mixfx.fx.effects.panner import pan_gains
from mixfx.fx.kernels import Backend, _numba
from mixfx.fx.signal import POWER_FLOOR


def stereo_stats(y: torch.Tensor, pre_l: torch.Tensor, pre_r: torch.Tensor) -> torch.Tensor:
    r"""Energy sums for :func:`stereo_gains`, ``(batch, 5)`` float64.

    With :math:`u = (g_L L, g_R R)` the input after the first panner (gains ``pre_l, pre_r``;
    1 where none), :math:`m = u_L + u_R`, :math:`s = u_L - u_R`: the columns are
    :math:`\sum L^2, \sum R^2, \sum m^2, \sum s^2, \sum m s` over samples. (On CPU the numba
    kernel computes the same sums in float64.)
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
    mid_gain, side_gain = imager_gains(em_in, es_in, width)
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
                   pan: torch.Tensor, pan_law: torch.Tensor, width: torch.Tensor,
                   backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """The chain's stage: the panner (where ``pan_on``; before the imager where ``pan_first``) and the
    imager (where ``imager_on``), each renormalised, in place, through :func:`stereo_gains`."""
    dev = y.device
    pan_on, pan_first, imager_on = pan_on.to(dev), pan_first.to(dev), imager_on.to(dev)
    rows = rows_of(pan_on | imager_on)
    if rows.numel() == 0:
        return y
    whole = rows.numel() == y.shape[0]
    sel = (lambda v: v.to(dev)) if whole else (lambda v: v.to(dev).index_select(0, rows))  # noqa: E731
    g_l, g_r = pan_gains(sel(pan).double(), sel(pan_law))
    first, after, imager_on = sel(pan_on & pan_first), sel(pan_on & ~pan_first), sel(imager_on)
    one = torch.ones_like(g_l)
    pre_l, pre_r = torch.where(first, g_l, one), torch.where(first, g_r, one)
    numba = kernels.resolve(y, backend) is Backend.NUMBA
    sub = y if (numba or whole) else y.index_select(0, rows)
    if numba:
        stats = torch.from_numpy(_numba.stereo_stats(y, rows, pre_l, pre_r))
    else:
        stats = stereo_stats(sub, pre_l, pre_r)
    gains = stereo_gains(stats.to(dev), y.shape[-1], pan_first=first, imager_on=imager_on, pan_after=after,
                         pan_l=g_l, pan_r=g_r, width=sel(width))
    if numba:
        _numba.stereo_apply_(y, rows, *gains)
        return y
    pre_l, pre_r, g_m, g_s, post_l, post_r = [g.to(y.dtype).view(-1, 1) for g in gains]
    ul, ur = sub[:, 0] * pre_l, sub[:, 1] * pre_r
    m, s = (ul + ur).mul_(g_m), (ul - ur).mul_(g_s)
    sub[:, 0] = (m + s).mul_(post_l / 2)
    sub[:, 1] = (m - s).mul_(post_r / 2)
    return y if whole else y.index_copy_(0, rows, sub)
