"""Compression (DRC) matching of FX normalization: the ratio/threshold search (Koo et al. 2023 §2.1.1).

Per channel: peak to −10 dBFS; if the mean onset peak (:func:`mixfx.fxnorm.features.mean_peak`)
lies above ``ref + std``, compress with the stem's attack/release, ratio from the stem's start
ratio up to 20 and threshold from −10 to −40 dB in 0.5 dB steps, keeping the first setting
(lowest ratio, then highest threshold) that brings the mean peak under ``ref + std``. The
official code scans the grid one setting at a time (up to ~1000 compressor passes); here a
bisection over the ratios and a model-guided secant search over the thresholds (bisection as a
safeguard) find the same setting whenever the mean peak falls monotonically with ratio and
threshold, in about 4 passes, both channels in one batched call. The compressor is
:func:`mixfx.fx.functional.compressor` (hard knee, smooth decoupled peak-detector ballistics),
**not** the official numba compressor (one-pole smoothing of the gain reduction), so the chosen
settings can differ slightly. No upward expansion (disabled in the official code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mixfx import SAMPLE_RATE
from mixfx.fx.functional import compressor
from mixfx.fxnorm.features import COMP_PEAK_DB, is_silent, mean_peak, peak_normalize, to_numpy, to_tensor

__all__ = ["COMP_SETTINGS", "CompressorSetting", "match_compression"]

COMP_MAX_RATIO = 20
COMP_MIN_THRESHOLD_DB = -40.0
COMP_MAX_THRESHOLD_DB = -10.0
COMP_THRESHOLD_STEP_DB = 0.5


@dataclass(frozen=True)
class CompressorSetting:
    """Per-stem compressor ballistics and the ratio the search starts from."""

    attack_ms: float
    release_ms: float
    ratio: int


COMP_SETTINGS = {
    "vocals": CompressorSetting(7.5, 400.0, 4),
    "drums": CompressorSetting(10.0, 180.0, 6),
    "bass": CompressorSetting(10.0, 500.0, 5),
    "other": CompressorSetting(15.0, 666.0, 4),
}



def _threshold_grid() -> np.ndarray:
    steps = int(round((COMP_MAX_THRESHOLD_DB - COMP_MIN_THRESHOLD_DB) / COMP_THRESHOLD_STEP_DB))
    return np.linspace(COMP_MAX_THRESHOLD_DB, COMP_MIN_THRESHOLD_DB, steps + 1)


def _search(ratios: Sequence[int], n_thresholds: int, start_value: float, upper: float):
    """Coroutine over the (ratio, threshold index) grid: yields settings, receives their mean peak.

    Finds the first ratio whose lowest threshold brings the mean peak under ``upper`` (bisection
    over the ratios), then the first (highest) threshold that does at that ratio (a first probe
    from a static hard-knee model, then secants through the latest two probes kept inside the
    bracket, bisection after three probes on the same side). Both assume the mean peak falls
    monotonically with the ratio and the threshold; the official code scans the same grid in the
    same order, so under that assumption both return the same setting.
    Index 0 (−10 dB, the peak level) leaves the signal unchanged, so its value is ``start_value``.
    Returns the chosen pair, or ``(max ratio, lowest threshold)`` when none satisfies; either way
    the last setting tried that satisfied (else the last one tried).
    """
    last = n_thresholds - 1

    def under(value) -> bool:
        return value is not None and value < upper

    v_hi = yield ratios[0], last
    r_hi = 0
    if not under(v_hi):
        if len(ratios) == 1:
            return ratios[0], last
        v_hi = yield ratios[-1], last
        if not under(v_hi):
            return ratios[-1], last
        r_lo, r_hi = 0, len(ratios) - 1
        while r_hi - r_lo > 1:
            mid = (r_lo + r_hi) // 2
            value = yield ratios[mid], last
            if under(value):
                r_hi, v_hi = mid, value
            else:
                r_lo = mid
    ratio = ratios[r_hi]
    lo, v_lo, hi = 0, start_value, last
    # first probe from a static hard-knee model (peaks at ``start_value`` come out at
    # T + (P - T) / R), then secants through the two latest probes, kept inside the bracket
    model_db = start_value - (start_value - upper) / (1.0 - 1.0 / ratio)
    guess = math.ceil((COMP_MAX_THRESHOLD_DB - model_db) / COMP_THRESHOLD_STEP_DB)
    recent, same_side = [(last, v_hi)], 0
    while hi - lo > 1:
        guess = min(max(guess, lo + 1), hi - 1)
        value = yield ratio, guess
        if under(value):
            hi, v_hi, same_side = guess, value, min(same_side, 0) - 1
        else:
            lo, v_lo, same_side = guess, (v_lo if value is None else value), max(same_side, 0) + 1
        if value is not None:
            recent = [(guess, value), recent[0]]
        (i1, v1), (i0, v0) = recent[0], recent[-1]
        slope = (v1 - v0) / (i1 - i0) if i1 != i0 else 0.0
        if slope < 0 and abs(same_side) < 3:
            guess = math.ceil(i1 + (upper - v1) / slope)
        else:  # safeguard: bisection after three probes on the same side
            guess, same_side = (lo + hi) // 2, 0
    return ratio, hi


def match_compression(x: torch.Tensor, target_db: float, target_std_db: float, setting: CompressorSetting,
                      sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Compression matching of a ``(2, T)`` stem, channel by channel (see module docstring).

    Channels leave peak-normalized to −10 dBFS (when not compressed) or compressed and clipped to
    ±1. A channel without any detected onset is left unchanged.
    """
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    out = audio.copy()
    upper = target_db + target_std_db
    grid = _threshold_grid()
    ratios = list(range(int(setting.ratio), COMP_MAX_RATIO + 1)) or [COMP_MAX_RATIO]
    searches, signals, best = {}, {}, {}
    for ch in range(audio.shape[0]):
        if is_silent(audio[ch]):
            continue
        sig = peak_normalize(audio[ch], COMP_PEAK_DB)
        measured = mean_peak(sig[None], sample_rate)
        if measured is None:
            continue
        out[ch] = sig
        if measured[0] > target_db - target_std_db and measured[0] >= upper:
            searches[ch] = _search(ratios, grid.size, measured[0], upper)
            signals[ch] = sig.astype(np.float32)
    # The search returns the last setting under target (or the last one tried), so the output of
    # the last trial under target (else the last trial) is the result: no extra compressor pass.
    pending = {ch: next(s) for ch, s in searches.items()}
    while pending:
        for ch, y in _compress_trials(signals, pending, grid, setting, sample_rate).items():
            peak = mean_peak(y[None], sample_rate)
            ok = peak is not None and peak[0] < upper
            if ok or ch not in best or not best[ch][0]:
                best[ch] = (ok, y)
            try:
                pending[ch] = searches[ch].send(None if peak is None else peak[0])
            except StopIteration:
                out[ch] = best[ch][1]
                del pending[ch]
    return to_tensor(out, x)


def _compress_trials(signals: dict, trials: dict, grid: np.ndarray, setting: CompressorSetting,
                     sample_rate: int) -> dict[int, np.ndarray]:
    """Compress each channel with its own (ratio, threshold index) in one batched call, clipped to ±1."""
    chans = list(trials)
    n = next(iter(signals.values())).shape[-1]
    batch = torch.zeros(len(chans), 2, n)
    for i, ch in enumerate(chans):
        batch[i, 0] = torch.from_numpy(signals[ch])  # channel 1 stays silent (cheap for the kernel)
    ratio = torch.tensor([float(trials[ch][0]) for ch in chans])
    threshold = torch.tensor([float(grid[trials[ch][1]]) for ch in chans])
    y = compressor(batch, sample_rate, threshold_db=threshold, ratio=ratio,
                   attack_ms=setting.attack_ms, release_ms=setting.release_ms)
    return {ch: np.clip(y[i, 0].double().numpy(), -1.0, 1.0) for i, ch in enumerate(chans)}
