"""FX normalization of wet stems (Koo et al. 2023 §2.1.1, after FxNorm, Martínez-Ramírez et al. 2022).

Every stem is processed, one effect at a time and in the order EQ, DRC, imaging, panning,
loudness, so that its FX-related features (:mod:`mixfx.fxnorm.features`) match per-stem
dataset averages (:class:`mixfx.fxnorm.targets.FXNormFeatures`). Imaging and panning work in the time domain. A step is skipped when the stem's
peak is at or below −40 dBFS, so silent stems pass through unchanged.

* **EQ** (per channel): loudness to −30 LUFS, average spectrum, FIR of 1001 taps
  (``scipy.signal.firwin2``, Hamming) with gain :math:`\\sqrt{ref/avg}`, zero-phase filtering
  (``filtfilt`` semantics, computed with FFT convolution). The gain difference is clipped to
  ±:data:`EQ_MAX_GAIN_DB` (the official code has no limit; this only matters in bands where the
  stem has almost no energy).
* **DRC** (per channel): the ratio/threshold search of :mod:`mixfx.fxnorm.compression`.
* **Imaging**: a near-mono stem (mid fraction above 0.99 for bass, 0.975 otherwise) first gets a
  random Haas effect (a ±40 ms delayed copy of one channel mixed into it, feedback 0.33–0.66,
  RMS kept), drawn from the ``rng`` argument; then mid and side are rescaled so that
  :math:`E_M/(E_M+E_S)` equals the target with the total energy kept.
* **Panning**: left and right are rescaled to the target L/R energy balance (0.5), then mid/side
  are rescaled back to the mid fraction the stem had before this step (the official imager
  normalization does exactly this pair of steps after imaging).
* **Loudness**: integrated loudness to the target, divided by the peak if it exceeds 1.

The steps work on one ``(2, T)`` stem (tensor in, float32 tensor out, on the input's device;
the DSP runs in float64 numpy on CPU); :func:`normalize_stems` takes a ``(B, 2, T)`` batch with
one stem name and one generator per row, like the rest of :mod:`mixfx.fx`.
"""

from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np
import scipy.signal
import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fxnorm.compression import COMP_SETTINGS, match_compression
from mixfx.fxnorm.features import (
    EQ_LUFS,
    FFT_SIZE,
    average_spectrum,
    is_silent,
    lufs_normalize,
    mid_energy_fraction,
    to_numpy,
    to_tensor,
)
from mixfx.fxnorm.targets import FXNormFeatures

__all__ = [
    "EFFECTS", "match_eq", "match_imager", "match_panning", "match_loudness", "normalize_effect", "normalize_stem",
    "normalize_stems", "stem_rng",
]

EFFECTS = ("eq", "compression", "imager", "panning", "loudness")
"""The normalization order of the paper (imaging and panning in the time domain)."""

EQ_TAPS = 1001
EQ_MAX_GAIN_DB = 60.0
HAAS_MAX_DELAY_SECONDS = 0.040
HAAS_FEEDBACK = (0.33, 0.66)
_ENERGY_EPS = (1e-4, 1e-3)
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
    return to_tensor(out, x)


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
    return to_tensor(np.stack([(mid + side) / 2, (mid - side) / 2]), x)


def match_panning(x: torch.Tensor, target_left_fraction: float = 0.5) -> torch.Tensor:
    """L/R balance matching of a ``(2, T)`` stem, keeping its mid/side energy split."""
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    mid_fraction = mid_energy_fraction(audio)
    left, right = _balance(audio[0], audio[1], target_left_fraction)
    mid, side = _balance(left + right, left - right, mid_fraction)
    return to_tensor(np.stack([(mid + side) / 2, (mid - side) / 2]), x)


# --------------------------------------------------------------------------------------- loudness, chain


def match_loudness(x: torch.Tensor, target_lufs: float, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Integrated loudness to ``target_lufs`` (divided by the peak if that exceeds 1)."""
    audio = to_numpy(x)
    if is_silent(audio):
        return x
    return to_tensor(lufs_normalize(audio, sample_rate, target_lufs), x)


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
        features: targets (:func:`mixfx.fxnorm.targets.load_features`).
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



def normalize_stems(x: torch.Tensor, stems: Sequence[str], features: FXNormFeatures, *,
                    rngs: Sequence[np.random.Generator] | None = None, sample_rate: int = SAMPLE_RATE,
                    effects: Sequence[str] = EFFECTS) -> torch.Tensor:
    """FX-normalize a batch: row ``i`` of ``x`` ``(B, 2, T)`` by :func:`normalize_stem` as stem ``stems[i]``.

    Args:
        rngs: one generator per row for its Haas step (e.g. :func:`stem_rng`); None gives every row
            its own ``default_rng(0)``, as :func:`normalize_stem` does.

    Returns:
        ``(B, 2, T)`` float32 on ``x``'s device.

    Raises:
        MixfxError: not a ``(B, 2, T)`` tensor, a stem name or generator count other than ``B``, or
            see :func:`normalize_stem`.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[1] != 2:
        raise MixfxError(f"normalize_stems: expected a (batch, 2, samples) tensor, got {tuple(getattr(x, 'shape', ()))}")
    if len(stems) != x.shape[0] or (rngs is not None and len(rngs) != x.shape[0]):
        raise MixfxError(f"normalize_stems: {x.shape[0]} rows but {len(stems)} stem names"
                         + ("" if rngs is None else f" and {len(rngs)} generators"))
    rows = [normalize_stem(x[i], stems[i], features, sample_rate=sample_rate, effects=effects,
                           rng=None if rngs is None else rngs[i]) for i in range(x.shape[0])]
    return torch.stack(rows) if rows else x.to(torch.float32)


def stem_rng(seed: int, key: str, stem: str) -> np.random.Generator:
    """The generator of one stem's Haas step: ``default_rng([seed, crc32(key), crc32(stem)])``.

    ``key`` names the item (e.g. the song), so the draw does not depend on processing order.
    """
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8")), zlib.crc32(stem.encode("utf-8"))])
