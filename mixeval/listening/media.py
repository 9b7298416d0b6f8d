"""Stimulus media: fades, anchor, true peak, loudness matching, 16-bit WAV/FLAC output.

Arrays here are numpy float64 ``(batch, channels, samples)`` (or ``(channels, samples)`` at io).
Loudness is ITU-R BS.1770 integrated loudness from :mod:`mixfx.fx.loudness`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import butter, resample_poly, sosfiltfilt

from mixeval.errors import MixevalError
from mixfx.fx.loudness import integrated_loudness
from mixfx.io.atomic import atomic_path

logger = logging.getLogger(__name__)

__all__ = [
    "MEDIA_FORMATS", "MatchedAudio", "anchor", "apply_fades", "common_level", "has_audible_block", "loudness_lufs",
    "match_loudness", "measure", "true_peak_dbtp", "write_pcm16", "write_wav16",
]

PCM16_MAX = 32767.0 / 32768.0
MEDIA_FORMATS = {"wav": "WAV", "flac": "FLAC"}  # suffix -> libsndfile format; both decode in WAET's decodeAudioData


def _check3(x: np.ndarray, name: str = "audio") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"{name}: expected (batch, channels, samples), got shape {x.shape}")
    return x


def loudness_lufs(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """BS.1770 integrated loudness of each item of ``(batch, channels, samples)`` audio; ``-inf`` for silence."""
    x = _check3(x)
    return integrated_loudness(torch.from_numpy(x), sample_rate).numpy()


def has_audible_block(x: np.ndarray, sample_rate: int, *, gate_lufs: float = -70.0) -> bool:
    """Cheap silence test: does any 400 ms block of ``(channels, samples)`` audio exceed ``gate_lufs``?

    Uses unweighted block power (K-weighting is skipped), which is enough to pick usable
    segments; :func:`match_loudness` applies the exact BS.1770 gate later.
    """
    x = np.asarray(x, dtype=np.float64)
    block = int(round(0.4 * sample_rate))
    if x.shape[-1] < block:
        return False
    power = np.square(x).sum(axis=0)
    cum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, x.shape[-1] - block + 1, max(1, block // 4))
    z = (cum[starts + block] - cum[starts]) / block
    return bool(np.any(-0.691 + 10.0 * np.log10(np.maximum(z, 1e-30)) > gate_lufs))


def true_peak_dbtp(x: np.ndarray, *, oversample: int = 4) -> np.ndarray:
    r"""True-peak level per item (dBTP): the peak of the ``oversample``-times upsampled signal.

    Follows ITU-R BS.1770-4 Annex 2 (4× oversampling with an interpolating low-pass, here a
    polyphase Kaiser-window filter), without its optional 12.04 dB headroom scaling.

    Args:
        x: ``(batch, channels, samples)`` audio.

    Returns:
        ``(batch,)`` array, :math:`20\log_{10}\max|x_{\uparrow}|`; ``-inf`` for silence.
    """
    x = _check3(x)
    up = resample_poly(x, oversample, 1, axis=-1) if oversample > 1 else x
    peak = np.maximum(np.abs(up).max(axis=(1, 2)), np.abs(x).max(axis=(1, 2)))
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(peak)


def apply_fades(x: np.ndarray, sample_rate: int, fade_ms: float) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of ``fade_ms`` on the last axis (a copy)."""
    n = int(round(fade_ms * 1e-3 * sample_rate))
    y = np.array(x, dtype=np.float64, copy=True)
    n = min(n, y.shape[-1] // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        y[..., :n] *= ramp
        y[..., -n:] *= ramp[::-1]
    return y


def anchor(x: np.ndarray, sample_rate: int, *, cutoff_hz: float = 3500.0) -> np.ndarray:
    """A degraded version for an anchor: mono sum, 8th-order zero-phase Butterworth low-pass.

    Args:
        x: ``(channels, samples)`` audio.

    Returns:
        ``(channels, samples)``: the low-passed mono signal on every channel.
    """
    x = np.asarray(x, dtype=np.float64)
    mono = x.mean(axis=0)
    sos = butter(4, cutoff_hz, btype="low", fs=sample_rate, output="sos")  # order 4, twice (filtfilt)
    low = sosfiltfilt(sos, mono)
    return np.repeat(low[None, :], x.shape[0], axis=0)


def common_level(
    loudness: np.ndarray, true_peak: np.ndarray, *, target_lufs: float, ceiling_dbtp: float | None
) -> tuple[float, np.ndarray]:
    r"""One loudness for a set of files that keeps every true peak under a ceiling.

    Each file :math:`i` with loudness :math:`L_i` and true peak :math:`P_i` is scaled to a common
    level :math:`\ell`, so its peak becomes :math:`P_i + \ell - L_i`. The rule: use the target,
    unless a file would then exceed the ceiling :math:`C`; then lower the level for *all* files by
    the largest excess, so they stay matched:

    .. math::
        e_i = \max(0,\ P_i + T - L_i - C), \qquad \ell = T - \max_i e_i

    Args:
        loudness: ``(n,)`` integrated loudness of each file (LUFS), all finite.
        true_peak: ``(n,)`` true peak of each file as it is (dBTP).
        target_lufs: the requested level :math:`T`.
        ceiling_dbtp: :math:`C`; None: no ceiling (the level is the target).

    Returns:
        ``(level, excess)``: the common level (LUFS) and ``(n,)`` :math:`e_i`, the dB by which each
        file would have exceeded the ceiling at the target (0 for files that fit).
    """
    loudness = np.asarray(loudness, dtype=np.float64)
    true_peak = np.asarray(true_peak, dtype=np.float64)
    if ceiling_dbtp is None:
        return float(target_lufs), np.zeros_like(loudness)
    excess = np.maximum(0.0, true_peak + (float(target_lufs) - loudness) - float(ceiling_dbtp))
    return float(target_lufs) - float(excess.max(initial=0.0)), excess


@dataclass(frozen=True)
class MatchedAudio:
    """Loudness-matched audio of one question and what was done to it.

    Attributes:
        audio: ``(batch, channels, samples)`` float64.
        gain_db, loudness_lufs, true_peak_dbtp: ``(batch,)`` per file, after matching.
        target_lufs: the loudness used (below the requested one when the ceiling forced it).
    """

    audio: np.ndarray
    gain_db: np.ndarray
    loudness_lufs: np.ndarray
    true_peak_dbtp: np.ndarray
    target_lufs: float


def measure(x: np.ndarray, sample_rate: int, *, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrated loudness (LUFS) and true peak (dBTP) of each item of ``(batch, channels, samples)`` audio.

    Raises:
        MixevalError: an item is silent (no block above −70 LUFS), naming it.
    """
    x = _check3(x)
    names = names or [f"item {i}" for i in range(x.shape[0])]
    loud = loudness_lufs(x, sample_rate)
    for name, value in zip(names, loud):
        if not np.isfinite(value):
            raise MixevalError(f"{name}: segment is silent (below -70 LUFS); choose another song or segment")
    return loud, true_peak_dbtp(x)


def match_loudness(
    x: np.ndarray,
    sample_rate: int,
    *,
    target_lufs: float = -23.0,
    ceiling_dbtp: float | None = -1.0,
    names: list[str] | None = None,
) -> MatchedAudio:
    """Scale every item to the same integrated loudness, keeping true peaks under a ceiling.

    If any item would exceed ``ceiling_dbtp`` at ``target_lufs``, the common target is lowered
    for *all* items so that they stay matched (:func:`common_level`); a log line says so.

    Args:
        x: ``(batch, channels, samples)`` audio, all items of one question.
        names: item names for error messages.

    Raises:
        MixevalError: an item is silent (no block above −70 LUFS), naming it.
    """
    x = _check3(x)
    names = names or [f"item {i}" for i in range(x.shape[0])]
    loud, peak = measure(x, sample_rate, names=names)
    target, excess = common_level(loud, peak, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    gain_db = target - loud
    peaks = peak + gain_db
    if excess.max(initial=0.0) > 0:
        worst = int(np.argmax(excess))
        logger.warning(
            "%s: true peak %.2f dBTP over the %.1f dBTP ceiling at %.1f LUFS; all lowered to %.2f LUFS",
            names[worst], excess[worst] + ceiling_dbtp, ceiling_dbtp, target_lufs, target,
        )
    y = x * (10.0 ** (gain_db / 20.0))[:, None, None]
    # both scale with the gain: the relative gate is scale-invariant; blocks crossing the -70 LUFS
    # absolute gate lie far below the relative gate in practice, so no second measurement is needed
    return MatchedAudio(y, gain_db, loud + gain_db, peaks, target)


def write_pcm16(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, media_format: str = "wav") -> int:
    """Write ``(channels, samples)`` audio as 16-bit PCM atomically; return the clipped-sample count.

    Samples beyond full scale are clipped (and counted) rather than wrapped.

    Args:
        media_format: a key of :data:`MEDIA_FORMATS`: ``"wav"`` or ``"flac"`` (lossless, about
            half the size; both hold the same 16-bit samples).

    Raises:
        MixevalError: unknown ``media_format``.
    """
    if media_format not in MEDIA_FORMATS:
        raise MixevalError(f"media format {media_format!r}: expected one of {sorted(MEDIA_FORMATS)}")
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 2:
        raise ValueError(f"expected (channels, samples), got shape {audio.shape}")
    clipped = int(np.count_nonzero(np.abs(audio) > PCM16_MAX))
    # quantise here (round to nearest of 32768 steps per unit) so WAV and FLAC hold the same samples:
    # libsndfile's own float -> PCM conversion scales differently per format
    data = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16).T
    with atomic_path(Path(path)) as tmp:
        sf.write(str(tmp), data, int(sample_rate), subtype="PCM_16", format=MEDIA_FORMATS[media_format])
    return clipped


def write_wav16(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> int:
    """:func:`write_pcm16` as WAV."""
    return write_pcm16(path, audio, sample_rate, media_format="wav")
