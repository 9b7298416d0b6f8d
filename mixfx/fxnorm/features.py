"""FX-normalization features: what is measured on a stem.

The five features of FX normalization (Martínez-Ramírez et al. 2022, "FxNorm"; Koo et al. 2023
§2.1.1), each measured on a ``(channels, samples)`` stem at 44.1 kHz:

* ``eq``: mean STFT magnitude (n_fft 65536, hop 16384, √Hann, no centring) of the stem
  loudness-normalized to −30 LUFS and zero-padded by n_fft on both sides, averaged over frames
  and channels: ``(32769,)``.
* ``compression``: ``(mean, std)`` in dB of the "mean peak" of the stem peak-normalized to
  −10 dBFS: onsets from a high-frequency-content (HFC) detector, the largest ``|x|`` from each
  onset to the next, and the mean and standard deviation of the peaks above their 75th
  percentile (mean over channels).
* ``imager``: mid-energy fraction :math:`E_M / (E_M + E_S)` with :math:`M = L + R`, :math:`S = L - R`.
* ``panning``: left-energy fraction :math:`E_L / (E_L + E_R)` (the official normalization forces
  0.5, our targets are 0.5 too; the official features file has no such entry and loads as 0.5).
* ``loudness``: integrated loudness in LUFS (ITU-R BS.1770, :mod:`mixfx.fx.loudness`).

The HFC onset detector re-implements the one the official code takes from aubio 0.4.9
(``onset("hfc", 1024, 1024, sr)``): periodic-Hann 1024-point frames without overlap, log
magnitude ``log(1 + |X|)``, HFC :math:`\\sum_k (k+1)|X_k|`, aubio's peak picker (7-frame
window, the same zero-state forward/backward biquad, median + 0.058·mean threshold, quadratic
peak interpolation), 50 ms minimum inter-onset interval, −70 dB silence gate and a 4.3-hop delay.

The per-stem tables of these features, and their files, are in :mod:`mixfx.fxnorm.targets`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import torch

from mixfx import SAMPLE_RATE
from mixfx.fx.loudness import BLOCK_SECONDS, integrated_loudness

FFT_SIZE = 65536
HOP_LENGTH = FFT_SIZE // 4
EQ_LUFS = -30.0
MIN_PEAK_DB = -40.0
COMP_PEAK_DB = -10.0
PEAK_PERCENTILE = 75.0
FEATURE_NAMES = ("eq", "compression", "imager", "panning", "loudness")

ONSET_FRAME = 1024
ONSET_THRESHOLD = 0.058
ONSET_MIN_IOI_SECONDS = 0.05
ONSET_DELAY_HOPS = 4.3
ONSET_SILENCE_DB = -70.0
_PEAKPICK_B = np.array([0.15998789, 0.31997577, 0.15998789])
_PEAKPICK_A = np.array([1.0, 0.23484048, 0.0])  # aubio 0.4.9's (documented-as-broken) coefficients
_PEAKPICK_POST, _PEAKPICK_PRE = 5, 1


# --------------------------------------------------------------------------------------- levels


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(channels, samples)`` audio as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def to_tensor(y: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``y`` as a contiguous float32 tensor on ``like``'s device (the matching steps' output)."""
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(like.device)


def peak_db(x: np.ndarray) -> float:
    """Sample peak in dBFS (``-inf`` for silence)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def is_silent(x: np.ndarray) -> bool:
    """True when the peak is at or below :data:`MIN_PEAK_DB` (FX normalization skips such stems)."""
    return peak_db(x) <= MIN_PEAK_DB


def loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS of ``(channels, samples)`` audio (BS.1770, :mod:`mixfx.fx.loudness`).

    Returns ``-inf`` when silent or shorter than one 400 ms block.
    """
    if x.shape[-1] < int(round(BLOCK_SECONDS * sample_rate)):
        return float("-inf")
    audio = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64))
    return float(integrated_loudness(audio[None], sample_rate)[0])


def lufs_normalize(x: np.ndarray, sample_rate: int, target_lufs: float) -> np.ndarray:
    """Scale to ``target_lufs``; if that makes the peak exceed 1, divide by the peak (official guard).

    Audio whose loudness is undefined (silent blocks only) is returned unchanged.
    """
    current = loudness_lufs(x, sample_rate)
    if not math.isfinite(current):
        return x
    y = x * 10.0 ** ((target_lufs - current) / 20.0)
    return y / max(1.0, 1e-6 + float(np.max(np.abs(y))))


def peak_normalize(x: np.ndarray, target_db: float) -> np.ndarray:
    """Scale so that the sample peak is ``target_db`` dBFS (silence is returned unchanged)."""
    peak = float(np.max(np.abs(x)))
    return x if peak == 0 else x * (10.0 ** (target_db / 20.0) / peak)


def mid_energy_fraction(x: np.ndarray) -> float:
    r""":math:`E_M/(E_M+E_S)` of a ``(2, samples)`` stem (0.5 for silence)."""
    e_mid = float(np.sum(np.square(x[0] + x[1])))
    e_side = float(np.sum(np.square(x[0] - x[1])))
    return e_mid / (e_mid + e_side) if e_mid + e_side > 0 else 0.5


def left_energy_fraction(x: np.ndarray) -> float:
    r""":math:`E_L/(E_L+E_R)` of a ``(2, samples)`` stem (0.5 for silence)."""
    e_l, e_r = float(np.sum(np.square(x[0]))), float(np.sum(np.square(x[1])))
    return e_l / (e_l + e_r) if e_l + e_r > 0 else 0.5


# --------------------------------------------------------------------------------------- spectrum


def sqrt_hann(n: int) -> np.ndarray:
    """Square root of the periodic Hann window of length ``n``."""
    return np.sqrt(scipy.signal.get_window("hann", n, fftbins=True))


def average_spectrum(x: np.ndarray, *, n_fft: int = FFT_SIZE, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Mean STFT magnitude over frames and channels, ``(n_fft // 2 + 1,)``.

    Frames as librosa's ``center=False``: ``1 + (T - n_fft) // hop`` full frames, no padding.

    Args:
        x: ``(channels, samples)`` with ``samples >= n_fft``.
    """
    if x.shape[-1] < n_fft:
        raise ValueError(f"need at least {n_fft} samples for the average spectrum, got {x.shape[-1]}")
    window = torch.from_numpy(sqrt_hann(n_fft)).float()
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), n_fft, hop_length,
                      window=window, center=False, return_complex=True)
    return spec.abs().mean(dim=(0, 2)).double().numpy()


def eq_curve(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """The ``eq`` feature: average spectrum of the stem at −30 LUFS, zero-padded by n_fft each side."""
    y = lufs_normalize(x, sample_rate, EQ_LUFS)
    return average_spectrum(np.pad(y, ((0, 0), (FFT_SIZE, FFT_SIZE))))


# --------------------------------------------------------------------------------------- onsets


def hfc_onsets(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset positions (samples) of a mono signal, by aubio 0.4.9's ``hfc`` detector (buf = hop = 1024).

    Only whole 1024-sample frames are analysed (the trailing partial frame is dropped).

    Args:
        x: ``(samples,)`` mono audio.

    Returns:
        Increasing int64 onset positions in samples.
    """
    hop = ONSET_FRAME
    n = x.shape[-1] // hop
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    frames = np.asarray(x[: n * hop], dtype=np.float64).reshape(n, hop)
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(hop) / hop))
    mag = np.log1p(np.abs(np.fft.rfft(frames * window, axis=1)))
    desc = mag @ np.arange(1, mag.shape[1] + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        silent = 10.0 * np.log10(np.mean(frames * frames, axis=1)) < ONSET_SILENCE_DB

    # peak picker: zero-state biquad forward and backward over the last 7 values, then threshold
    width = _PEAKPICK_POST + _PEAKPICK_PRE + 1
    win = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.zeros(width - 1), desc]), width)
    proc = scipy.signal.lfilter(_PEAKPICK_B, _PEAKPICK_A, win, axis=1)
    proc = scipy.signal.lfilter(_PEAKPICK_B, _PEAKPICK_A, proc[:, ::-1], axis=1)[:, ::-1]
    thresholded = proc[:, _PEAKPICK_POST] - np.median(proc, axis=1) - proc.mean(axis=1) * ONSET_THRESHOLD
    prev2 = np.concatenate([[0.0, 0.0], thresholded[:-2]])  # peek[0] at frame i
    prev1 = np.concatenate([[0.0], thresholded[:-1]])  # peek[1]
    cand = (prev1 > prev2) & (prev1 > thresholded) & (prev1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = 1.0 + 0.5 * (prev2 - thresholded) / (prev2 - 2.0 * prev1 + thresholded)

    delay = int(ONSET_DELAY_HOPS * hop)
    min_ioi = int(math.floor(ONSET_MIN_IOI_SECONDS * sample_rate + 0.5))
    start_frames = np.arange(min(n, delay // hop + 1))
    visit = np.union1d(np.flatnonzero(cand), start_frames)
    last, onsets = 0, []
    for i in visit:
        total = int(i) * hop
        if cand[i]:
            if silent[i]:
                continue
            new = total + int(math.floor(pos[i] * hop + 0.5))
            if last + min_ioi < new and not (last > 0 and delay > new):
                last = max(delay, new)
                onsets.append(last - delay)
        elif total <= delay and not silent[i] and (total == 0 or last + min_ioi < total):
            last = total + delay
            onsets.append(total)
    return np.asarray(onsets, dtype=np.int64)


def mean_peak(x: np.ndarray, sample_rate: int, *, pad: int = FFT_SIZE) -> tuple[float, float] | None:
    """The ``compression`` feature of audio as given (no peak normalization here).

    Per channel: onsets of the signal zero-padded by ``pad`` samples on both sides (as the
    official code analyses it), the largest ``|x|`` from each onset to the next (in dB), and the
    mean and population std of the peaks above their 75th percentile (all peaks when none is above).

    Args:
        x: ``(channels, samples)``.

    Returns:
        ``(mean_db, std_db)`` averaged over channels, or None when a channel has no onset.
    """
    means, stds = [], []
    for channel in np.atleast_2d(x):
        c = np.pad(channel, (pad, pad))
        onsets = hfc_onsets(c, sample_rate)
        if onsets.size == 0:
            return None
        peaks = 20.0 * np.log10(np.maximum.reduceat(np.abs(c), onsets) + 1e-30)
        top = peaks[peaks > np.percentile(peaks, PEAK_PERCENTILE)]
        chosen = top if top.size else peaks
        means.append(float(np.mean(chosen)))
        stds.append(float(np.std(chosen)))
    return float(np.mean(means)), float(np.mean(stds))


# --------------------------------------------------------------------------------------- one feature


def measure_feature(x: torch.Tensor | np.ndarray, feature: str, sample_rate: int = SAMPLE_RATE):
    """Measure one FX-normalization feature of a ``(2, samples)`` stem as the official code does.

    Args:
        x: stereo stem.
        feature: one of :data:`FEATURE_NAMES`.
        sample_rate: in Hz.

    Returns:
        ``eq``: ``(32769,)`` array; ``compression``: ``(mean_db, std_db)``; the others: float.
        None when the stem is silent (peak ≤ −40 dBFS) or, for ``compression``, has no onset.
    """
    if feature not in FEATURE_NAMES:
        raise ValueError(f"unknown feature {feature!r}; expected one of {', '.join(FEATURE_NAMES)}")
    x = to_numpy(x)
    if is_silent(x):
        return None
    if feature == "eq":
        return eq_curve(x, sample_rate)
    if feature == "compression":
        return mean_peak(peak_normalize(x, COMP_PEAK_DB), sample_rate)
    if feature == "imager":
        return mid_energy_fraction(x)
    if feature == "panning":
        return left_energy_fraction(x)
    value = loudness_lufs(x, sample_rate)
    return value if math.isfinite(value) else None
