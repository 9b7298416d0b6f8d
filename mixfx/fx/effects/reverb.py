"""Convolution reverb (parallel send, peak-aligned IR) and the official drums routing.

:func:`convolution_reverb` and :func:`drums_reverb` are the effects, :func:`reverb_` the chain's
stage (every reverberated example in one batched FFT convolution with cached IR spectra,
:class:`mixfx.fx.convolution.IRSpectra`), :data:`TABLE` the sampled parameters: the IR (drawn
from the bank, uniform over RT60 groups), its RT60 (a descriptor, not an argument) and the dry
share (0–0.5; 0 in single-FX mode, the reverb then fully wet).
"""

from __future__ import annotations

from typing import Mapping

import torch

from mixfx.fx.convolution import IRSpectra, aligned_convolution, aligned_ir_spectra, fft_size, ir_peaks
from mixfx.fx.effects._batch import check_audio, per_example, rows_of
from mixfx.fx.effects.eq import shelf_filter
from mixfx.fx.kernels import Backend
from mixfx.fx.paramspec import DRAWN_IR_INDEX, DRAWN_IR_RT60, EffectTable, ParamKind, ParamSpec
from mixfx.fx.signal import match_rms

DRY_WEIGHT = (0.0, 0.5)
"""Range of the dry share of the plain send."""
DRUMS_DRY, DRUMS_WET = 0.6, 0.4
"""The drums routing's fixed blend of the low-band mix and the reverberated high band."""


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
    check_audio(x)
    if ir.ndim != 3 or ir.shape[0] != x.shape[0] or ir.shape[1] != 2:
        raise ValueError(f"expected impulse responses of shape ({x.shape[0]}, 2, L), got {tuple(ir.shape)}")
    n = x.shape[-1]
    ir = ir.to(device=x.device, dtype=x.dtype)
    # the output keeps n samples after the peak, so IR samples beyond peak + n never reach it
    ir = ir[..., : min(ir.shape[-1], int(ir_peaks(ir).max()) + n)]
    n_fft = fft_size(n + ir.shape[-1])
    wet = aligned_convolution(x, aligned_ir_spectra(ir, n_fft), n_fft)
    wet = match_rms(wet, x)
    w = per_example(dry_weight, x).view(-1, 1, 1)
    return w * x + (1.0 - w) * wet


def drums_reverb(x: torch.Tensor, sample_rate: int, *, ir: torch.Tensor, dry_weight=None,
                 backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """The official drums routing: a fixed low-band blend, then reverb on the high band only.

    ``y = 0.8·x + 0.2·LP(x)``; ``z = 0.6·y + 0.4·reverb(HP(y))`` with LP/HP = −50 dB high/low
    shelves at 100 Hz and a fully wet, RMS-matched reverb (``dry_weight`` is ignored: the blend
    weights are fixed, as in the official code).
    """
    blend, high = drums_split(x, sample_rate, backend=backend)
    wet = convolution_reverb(high, sample_rate, ir=ir, dry_weight=0.0)
    return DRUMS_DRY * blend + DRUMS_WET * wet


def drums_split(x: torch.Tensor, sample_rate: int, *, backend: str | Backend = Backend.AUTO
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The drums routing before the reverb: ``y = 0.8·x + 0.2·LP(x)`` and ``HP(y)`` RMS-matched to ``y``."""
    low = shelf_filter(x, sample_rate, kind="high_shelf", freq_hz=100.0, gain_db=-50.0, backend=backend)
    blend = 0.8 * x + 0.2 * match_rms(low, x)
    high = shelf_filter(blend, sample_rate, kind="low_shelf", freq_hz=100.0, gain_db=-50.0, backend=backend)
    return blend, match_rms(high, blend)


def reverb_(y: torch.Tensor, *, sample_rate: int, spectra: IRSpectra, reverb_on: torch.Tensor, drums: torch.Tensor,
            ir_index: torch.Tensor, dry_weight: torch.Tensor, backend: str | Backend = Backend.AUTO) -> torch.Tensor:
    """The chain's stage: the reverb (plain send, or the drums routing where ``drums``) where ``reverb_on``.

    ``y`` is overwritten; use the returned tensor (a new one when every example is reverberated).
    All reverberated examples share one FFT convolution; see :func:`convolution_reverb` and
    :func:`drums_reverb` for the definitions.
    """
    dev = y.device
    reverb_on, drums = reverb_on.to(dev), drums.to(dev)
    rows = rows_of(reverb_on)
    if rows.numel() == 0:
        return y
    whole = rows.numel() == y.shape[0]
    dry = y if whole else y.index_select(0, rows)
    source = dry  # what the IR convolves
    is_drum = drums.index_select(0, rows)
    weight = dry_weight.to(dev).index_select(0, rows).to(torch.float32)
    mix_dry, mix_wet = weight, 1.0 - weight
    if bool(is_drum.any()):
        d = rows_of(is_drum)
        low_blend, high = drums_split(dry.index_select(0, d), sample_rate, backend=backend)
        source = dry.clone().index_copy_(0, d, high)
        dry.index_copy_(0, d, low_blend)  # dry is y itself or a gathered copy: ours to change
        mix_dry = torch.where(is_drum, torch.full_like(weight, DRUMS_DRY), mix_dry)
        mix_wet = torch.where(is_drum, torch.full_like(weight, DRUMS_WET), mix_wet)
    wet = spectra.convolve(source, ir_index.to(dev).index_select(0, rows))
    wet = match_rms(wet, source)
    out = wet.mul_(mix_wet.view(-1, 1, 1)).add_(dry * mix_dry.view(-1, 1, 1))
    if whole:
        return out
    return y.index_copy_(0, rows, out)


def process(x: torch.Tensor, sample_rate: int, values: Mapping[str, torch.Tensor], *, irs: torch.Tensor,
            drums: torch.Tensor | bool = False, backend: str | Backend = Backend.AUTO, **_) -> torch.Tensor:
    """The reverb with a configuration's values: :func:`drums_reverb` where ``drums`` (per example),
    :func:`convolution_reverb` elsewhere; ``irs`` is the bank's ``(n, 2, L)`` tensor."""
    ir = irs[values["reverb.ir_index"]]
    drums = torch.as_tensor(drums, dtype=torch.bool).expand(x.shape[0])
    out = x.clone()
    plain, routed = rows_of(~drums), rows_of(drums)
    if plain.numel():
        out[plain] = convolution_reverb(x[plain], sample_rate, ir=ir[plain],
                                        dry_weight=values["reverb.dry_weight"][plain])
    if routed.numel():
        out[routed] = drums_reverb(x[routed], sample_rate, ir=ir[routed], backend=backend)
    return out


TABLE = EffectTable("reverb", (
    ParamSpec("reverb", "rt60_s", 0.0, 4.0, neutral=0.0, unit="s", argument=None, drawn=DRAWN_IR_RT60),
    ParamSpec("reverb", "dry_weight", *DRY_WEIGHT, neutral="high", single_fx_value=0.0,
              unused_by=(("drums", "unused by the drum reverb routing"),)),
    ParamSpec("reverb", "ir_index", 0, 0, neutral=0, kind=ParamKind.CATEGORICAL, drawn=DRAWN_IR_INDEX),
), process)
"""``rt60_s`` and ``ir_index`` get their upper ends from the IR bank (:meth:`mixfx.fx.params.FXRanges.specs`)."""
