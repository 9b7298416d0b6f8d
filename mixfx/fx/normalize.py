"""FX normalization of wet stems (Koo et al. 2023 §2.1.1, after FxNorm, Martínez-Ramírez et al. 2022).

Every stem is processed, one effect at a time and in the order EQ, DRC, imaging, panning,
loudness, so that its FX-related features (:mod:`mixfx.fx.normalize_features`) match per-stem
dataset averages. Imaging and panning work in the time domain. A step is skipped when the stem's
peak is at or below −40 dBFS, so silent stems pass through unchanged.

* **EQ** (per channel): loudness to −30 LUFS, average spectrum, FIR of 1001 taps
  (``scipy.signal.firwin2``, Hamming) with gain :math:`\\sqrt{ref/avg}`, zero-phase filtering
  (``filtfilt`` semantics, computed with FFT convolution). The gain difference is clipped to
  ±:data:`EQ_MAX_GAIN_DB` (the official code has no limit; this only matters in bands where the
  stem has almost no energy).
* **DRC** (per channel): peak to −10 dBFS; if the mean onset peak lies above ``ref + std``,
  compress with the stem's attack/release, ratio from the stem's start ratio up to 20 and
  threshold from −10 to −40 dB in 0.5 dB steps, keeping the first setting (lowest ratio, then
  highest threshold) that brings the mean peak under ``ref + std``. The official code scans the
  grid one setting at a time (up to ~1000 compressor passes); here a bisection over the ratios
  and a model-guided secant search over the thresholds (bisection as a safeguard) find the same
  setting whenever the mean peak falls monotonically with ratio and threshold, in about 4
  passes, both channels in one batched call. The compressor is :func:`mixfx.fx.functional.compressor`
  (hard knee, smooth decoupled peak-detector ballistics), **not** the official numba compressor
  (one-pole smoothing of the gain reduction), so the chosen settings can differ slightly.
  No upward expansion (disabled in the official code).
* **Imaging**: a near-mono stem (mid fraction above 0.99 for bass, 0.975 otherwise) first gets a
  random Haas effect (a ±40 ms delayed copy of one channel mixed into it, feedback 0.33–0.66,
  RMS kept), drawn from the ``rng`` argument; then mid and side are rescaled so that
  :math:`E_M/(E_M+E_S)` equals the target with the total energy kept.
* **Panning**: left and right are rescaled to the target L/R energy balance (0.5), then mid/side
  are rescaled back to the mid fraction the stem had before this step (the official imager
  normalization does exactly this pair of steps after imaging).
* **Loudness**: integrated loudness to the target, divided by the peak if it exceeds 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.signal
import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fx.functional import compressor
from mixfx.fx.normalize_features import (
    COMP_PEAK_DB,
    EQ_LUFS,
    FFT_SIZE,
    average_spectrum,
    is_silent,
    lufs_normalize,
    mean_peak,
    measure_feature,
    mid_energy_fraction,
    peak_normalize,
    to_numpy,
)
from mixfx.fx.normalize_io import FXNormFeatures, load_features

__all__ = [
    "EFFECTS", "COMP_SETTINGS", "CompressorSetting", "FXNormFeatures", "load_features", "measure_feature",
    "match_eq", "match_compression", "match_imager", "match_panning", "match_loudness", "normalize_effect",
    "normalize_stem",
]

EFFECTS = ("eq", "compression", "imager", "panning", "loudness")
"""The normalization order of the paper (imaging and panning in the time domain)."""

EQ_TAPS = 1001
EQ_MAX_GAIN_DB = 60.0
COMP_MAX_RATIO = 20
COMP_MIN_THRESHOLD_DB = -40.0
COMP_MAX_THRESHOLD_DB = -10.0
COMP_THRESHOLD_STEP_DB = 0.5
HAAS_MAX_DELAY_SECONDS = 0.040
HAAS_FEEDBACK = (0.33, 0.66)
_ENERGY_EPS = (1e-4, 1e-3)


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
MONO_THRESHOLDS = {"bass": 0.99}
MONO_THRESHOLD_DEFAULT = 0.975


# --------------------------------------------------------------------------------------- EQ


def filtfilt_fir(b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``scipy.signal.filtfilt(b, 1, x, padtype="odd")`` along the last axis, by FFT convolution.

    Same odd extension (``3·len(b)`` samples) and steady-state initial conditions as scipy; the
    convolutions run in float32 by overlap-add FFT, so the result equals scipy's up to float32
    rounding (~1e-6 relative), about 100× faster on a long stem.
    """
    taps = b.shape[0]
    edge = 3 * taps
    if x.shape[-1] <= edge:
        raise ValueError(f"signal of {x.shape[-1]} samples is too short for filtfilt with {taps} taps")
    left = 2 * x[..., :1] - x[..., edge:0:-1]
    right = 2 * x[..., -1:] - x[..., -2 : -edge - 2 : -1]
    ext = np.concatenate([left, x, right], axis=-1)

    kernel = np.asarray(b, dtype=np.float32).reshape((1,) * (x.ndim - 1) + (taps,))

    def forward(sig: np.ndarray) -> np.ndarray:
        head = np.repeat(sig[..., :1], taps - 1, axis=-1)  # the input held at its first value forever
        padded = np.concatenate([head, sig], axis=-1).astype(np.float32)
        return scipy.signal.oaconvolve(padded, kernel, mode="valid", axes=-1)

    y = forward(ext)
    y = forward(y[..., ::-1])[..., ::-1]
    return y[..., edge:-edge].astype(np.float64)


def eq_matching_filter(spectrum: np.ndarray, reference: np.ndarray, *, taps: int = EQ_TAPS,
                       max_gain_db: float = EQ_MAX_GAIN_DB) -> np.ndarray:
    """FIR taps whose magnitude is :math:`\\sqrt{ref/avg}` on a linear grid from 0 to Nyquist."""
    diff_db = 20.0 * np.log10(reference + 1e-30) - 20.0 * np.log10(spectrum + 1e-30)
    gain = np.sqrt(10.0 ** (np.clip(diff_db, -max_gain_db, max_gain_db) / 20.0))
    freq = np.linspace(0.0, 1.0, reference.shape[0])
    return scipy.signal.firwin2(taps, freq, gain, window="hamming")


def match_eq(x: torch.Tensor, reference: np.ndarray, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """EQ matching of a ``(2, T)`` stem to a reference average spectrum ``(32769,)``, channel by channel.

    Each channel leaves at about −30 LUFS (the level of the analysis), as in the official code.
    """
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    out = audio.copy()
    n = audio.shape[-1]
    for ch in range(audio.shape[0]):
        if is_silent(audio[ch]):
            continue
        padded = lufs_normalize(np.pad(audio[ch], FFT_SIZE)[None], sample_rate, EQ_LUFS)[0]
        b = eq_matching_filter(average_spectrum(padded[None]), np.asarray(reference, dtype=np.float64))
        out[ch] = filtfilt_fir(b, padded)[FFT_SIZE : FFT_SIZE + n]
    return _to_tensor(out, x)


# --------------------------------------------------------------------------------------- DRC


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
    return _to_tensor(out, x)


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


# --------------------------------------------------------------------------------------- imaging, panning


def _balance(a: np.ndarray, b: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Rescale ``a`` and ``b`` so that :math:`E_a/(E_a+E_b)` = ``fraction``, total energy kept."""
    e_a, e_b = float(np.sum(a * a)), float(np.sum(b * b))
    total = e_a + e_b
    g_a = math.sqrt(fraction * total / (e_a + _ENERGY_EPS[0]))
    g_b = math.sqrt(max(total - e_a * g_a * g_a, 0.0) / (e_b + _ENERGY_EPS[1]))
    return a * g_a, b * g_b


def haas(x: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Random Haas effect on ``(2, T)`` audio: one channel plus a delayed copy of itself, RMS kept.

    Delay uniform in [−40, 40) ms (integer samples), feedback uniform in [0.33, 0.66), channel
    uniform; the delayed copy is zero-filled (no wrap-around).
    """
    limit = int(HAAS_MAX_DELAY_SECONDS * sample_rate)
    delay = int(rng.integers(-limit, limit))
    feedback = float(rng.uniform(*HAAS_FEEDBACK))
    ch = int(rng.integers(2))
    shifted = np.zeros_like(x[ch])
    if delay >= 0:
        shifted[delay:] = x[ch][: x.shape[-1] - delay]
    else:
        shifted[:delay] = x[ch][-delay:]
    y = x.copy()
    y[ch] = x[ch] + feedback * shifted
    scale = math.sqrt(float(np.mean(x * x)) / max(1e-7, float(np.mean(y * y))))
    return y * scale


def match_imager(x: torch.Tensor, target_mid_fraction: float, *, mono_threshold: float = MONO_THRESHOLD_DEFAULT,
                 rng: np.random.Generator | None = None, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Stereo-imaging matching of a ``(2, T)`` stem: Haas if near-mono, then the mid/side energy split."""
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    if mid_energy_fraction(audio) > mono_threshold:
        audio = haas(audio, rng if rng is not None else np.random.default_rng(0), sample_rate)
    mid, side = _balance(audio[0] + audio[1], audio[0] - audio[1], target_mid_fraction)
    return _to_tensor(np.stack([(mid + side) / 2, (mid - side) / 2]), x)


def match_panning(x: torch.Tensor, target_left_fraction: float = 0.5) -> torch.Tensor:
    """L/R balance matching of a ``(2, T)`` stem, keeping its mid/side energy split."""
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    mid_fraction = mid_energy_fraction(audio)
    left, right = _balance(audio[0], audio[1], target_left_fraction)
    mid, side = _balance(left + right, left - right, mid_fraction)
    return _to_tensor(np.stack([(mid + side) / 2, (mid - side) / 2]), x)


# --------------------------------------------------------------------------------------- loudness, chain


def match_loudness(x: torch.Tensor, target_lufs: float, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Integrated loudness to ``target_lufs`` (divided by the peak if that exceeds 1)."""
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    return _to_tensor(lufs_normalize(audio, sample_rate, target_lufs), x)


def normalize_effect(x: torch.Tensor, stem: str, effect: str, features: FXNormFeatures, *,
                     sample_rate: int = SAMPLE_RATE, rng: np.random.Generator | None = None) -> torch.Tensor:
    """Apply one normalization step (``effect`` in :data:`EFFECTS`) to a ``(2, T)`` stem."""
    if effect == "eq":
        return match_eq(x, features.eq[stem], sample_rate)
    if effect == "compression":
        mean_db, std_db = features.compression[stem]
        return match_compression(x, mean_db, std_db, COMP_SETTINGS.get(stem, COMP_SETTINGS["other"]), sample_rate)
    if effect == "imager":
        return match_imager(x, features.imager[stem], mono_threshold=MONO_THRESHOLDS.get(stem, MONO_THRESHOLD_DEFAULT),
                            rng=rng, sample_rate=sample_rate)
    if effect == "panning":
        return match_panning(x, features.panning[stem])
    if effect == "loudness":
        return match_loudness(x, features.loudness[stem], sample_rate)
    raise MixfxError(f"unknown FX normalization step {effect!r}; expected one of {', '.join(EFFECTS)}")


def normalize_stem(x: torch.Tensor, stem: str, features: FXNormFeatures, *, sample_rate: int = SAMPLE_RATE,
                   rng: np.random.Generator | None = None, effects: Sequence[str] = EFFECTS) -> torch.Tensor:
    """FX-normalize one stem: the steps of ``effects`` in order (default EQ, DRC, imaging, panning, loudness).

    Args:
        x: ``(2, samples)`` float stem at ``sample_rate``.
        stem: stem name, a key of the feature tables (``drums``, ``bass``, ``other``, ``vocals``).
        features: targets (:func:`mixfx.fx.normalize_io.load_features`).
        sample_rate: in Hz; must equal ``features.sample_rate``.
        rng: draws the Haas effect of near-mono stems; None uses ``default_rng(0)``. The output is a
            deterministic function of ``x`` and the generator state.
        effects: the steps, e.g. the official inference order
            ``("loudness", "eq", "compression", "imager", "loudness")``.

    Returns:
        ``(2, samples)`` float32 tensor on ``x``'s device.

    Raises:
        MixfxError: bad shape, unknown stem or step, sample-rate mismatch.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] != 2:
        raise MixfxError(f"{stem}: expected a stereo tensor of shape (2, samples), got {tuple(getattr(x, 'shape', ()))}")
    if stem not in features.stems:
        raise MixfxError(f"unknown stem {stem!r}; the features hold {', '.join(features.stems)}")
    if sample_rate != features.sample_rate:
        raise MixfxError(f"{stem}: sample rate {sample_rate} Hz, but the features were measured at {features.sample_rate} Hz")
    if not torch.isfinite(x).all():
        raise MixfxError(f"{stem}: audio contains NaN or Inf samples")
    rng = rng if rng is not None else np.random.default_rng(0)
    y = x
    for effect in effects:
        y = normalize_effect(y, stem, effect, features, sample_rate=sample_rate, rng=rng)
    return y.to(torch.float32)


def _to_tensor(y: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(like.device)
