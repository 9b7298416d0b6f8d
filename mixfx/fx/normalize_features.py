"""FX-normalization features: what is measured on a stem, and the per-stem feature tables.

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
  0.5; the official features file has no such entry and loads as 0.5).
* ``loudness``: integrated loudness in LUFS (ITU-R BS.1770, :mod:`mixfx.fx.loudness`).

The HFC onset detector re-implements the one the official code takes from aubio 0.4.9
(``onset("hfc", 1024, 1024, sr)``): periodic-Hann 1024-point frames without overlap, log
magnitude ``log(1 + |X|)``, HFC :math:`\\sum_k (k+1)|X_k|`, aubio's peak picker (7-frame
window, the same zero-state forward/backward biquad, median + 0.058·mean threshold, quadratic
peak interpolation), 50 ms minimum inter-onset interval, −70 dB silence gate and a 4.3-hop delay.

:class:`FXNormFeatures` holds one value per stem and effect; it saves to ``.npz`` and loads
either that or the official pickled ``musdb18_fxfeatures_eqcompimagegain.npy`` through a
restricted unpickler that can only rebuild numpy arrays.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import scipy.signal
import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fx.loudness import _HIGH_PASS as _K_HIGH_PASS  # the K-weighting biquads (BS.1770)
from mixfx.fx.loudness import _SHELF as _K_SHELF
from mixfx.fx.loudness import ABSOLUTE_GATE_LUFS, BLOCK_SECONDS, RELATIVE_GATE_LU, STEP_SECONDS
from mixfx.fx.signal import biquad_coefficients
from mixfx.io.atomic import atomic_write

FFT_SIZE = 65536
HOP_LENGTH = FFT_SIZE // 4
EQ_LUFS = -30.0
MIN_PEAK_DB = -40.0
COMP_PEAK_DB = -10.0
PEAK_PERCENTILE = 75.0
EQ_SMOOTH_WINDOWS = {"drums": 151, "bass": 151, "other": 401, "vocals": 401}
EQ_SMOOTH_DEFAULT = 401
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


def peak_db(x: np.ndarray) -> float:
    """Sample peak in dBFS (``-inf`` for silence)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def is_silent(x: np.ndarray) -> bool:
    """True when the peak is at or below :data:`MIN_PEAK_DB` (FX normalization skips such stems)."""
    return peak_db(x) <= MIN_PEAK_DB


def loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of ``(channels, samples)`` audio; ``-inf`` when silent or too short.

    The BS.1770 measure of :func:`mixfx.fx.loudness.integrated_loudness` (same K-weighting biquads,
    blocks and gates), with the K-weighting run as recursive filters: on one long stem this is
    much faster than the frequency-domain filtering of the batched version.
    """
    block = int(round(BLOCK_SECONDS * sample_rate))
    step = int(round(STEP_SECONDS * sample_rate))
    if x.shape[-1] < block:
        return float("-inf")
    y = scipy.signal.sosfilt(_k_weighting_sos(sample_rate), np.atleast_2d(x), axis=-1)
    cum = np.concatenate([[0.0], np.cumsum(np.square(y).sum(axis=0))])
    starts = np.arange(0, y.shape[-1] - block + 1, step)
    z = (cum[starts + block] - cum[starts]) / block
    with np.errstate(divide="ignore"):
        z = z[-0.691 + 10.0 * np.log10(z) > ABSOLUTE_GATE_LUFS]
        if z.size == 0:
            return float("-inf")
        gate = -0.691 + 10.0 * np.log10(z.mean()) + RELATIVE_GATE_LU
        z = z[-0.691 + 10.0 * np.log10(z) > gate]
    return float(-0.691 + 10.0 * np.log10(z.mean())) if z.size else float("-inf")


@functools.lru_cache(maxsize=8)
def _k_weighting_sos(sample_rate: int) -> np.ndarray:
    sections = []
    for kind, p in (("high_shelf", _K_SHELF), ("high_pass", _K_HIGH_PASS)):
        args = (torch.tensor([p[k]], dtype=torch.float64) for k in ("freq_hz", "gain_db", "q"))
        b, a = biquad_coefficients(kind, *args, sample_rate)
        sections.append(np.concatenate([b[0].numpy(), a[0].numpy()]))
    return np.stack(sections)


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


def smooth_eq(curve: np.ndarray, stem: str) -> np.ndarray:
    """Savitzky–Golay smoothing of an EQ curve (order 1, mirror; window 151 drums/bass, 401 others)."""
    window = EQ_SMOOTH_WINDOWS.get(stem, EQ_SMOOTH_DEFAULT)
    window = min(window, curve.shape[-1] - (1 - curve.shape[-1] % 2))
    return scipy.signal.savgol_filter(np.asarray(curve, dtype=np.float64), window, 1, mode="mirror")


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


# --------------------------------------------------------------------------------------- feature tables


@dataclass(frozen=True)
class FXNormFeatures:
    """Per-stem targets of FX normalization (immutable; arrays are read-only).

    Attributes:
        eq: stem -> ``(n_fft // 2 + 1,)`` mean STFT magnitude at −30 LUFS.
        compression: stem -> ``(mean_db, std_db)`` of the mean onset peak at −10 dBFS peak.
        imager: stem -> target mid-energy fraction in [0, 1].
        panning: stem -> target left-energy fraction in [0, 1] (0.5 in the official setup).
        loudness: stem -> target integrated loudness in LUFS.
        sample_rate: rate the features were measured at (Hz).
        n_fft: FFT size of the EQ curves.
    """

    eq: Mapping[str, np.ndarray]
    compression: Mapping[str, tuple[float, float]]
    imager: Mapping[str, float]
    panning: Mapping[str, float]
    loudness: Mapping[str, float]
    sample_rate: int = SAMPLE_RATE
    n_fft: int = FFT_SIZE

    def __post_init__(self) -> None:
        stems = tuple(self.eq)
        if not stems:
            raise MixfxError("FX features: no stems")
        for name in FEATURE_NAMES:
            table = getattr(self, name)
            if set(table) != set(stems):
                raise MixfxError(f"FX features: '{name}' has stems {sorted(table)}, 'eq' has {sorted(stems)}")
        bins = self.n_fft // 2 + 1
        eq, comp, imager, pan, loud = {}, {}, {}, {}, {}
        for s in stems:
            curve = np.array(self.eq[s], dtype=np.float64).reshape(-1)
            if curve.shape != (bins,) or not np.isfinite(curve).all() or (curve < 0).any():
                raise MixfxError(f"FX features: eq[{s}] must be {bins} finite non-negative values, got shape {curve.shape}")
            curve.flags.writeable = False
            eq[s] = curve
            c = np.asarray(self.compression[s], dtype=np.float64).reshape(-1)
            if c.shape != (2,) or not np.isfinite(c).all() or c[1] < 0:
                raise MixfxError(f"FX features: compression[{s}] must be (mean_db, std_db >= 0), got {c.tolist()}")
            comp[s] = (float(c[0]), float(c[1]))
            for label, table, out in (("imager", self.imager, imager), ("panning", self.panning, pan)):
                v = float(np.asarray(table[s], dtype=np.float64).reshape(-1)[0])
                if not 0.0 <= v <= 1.0:
                    raise MixfxError(f"FX features: {label}[{s}] must be an energy fraction in [0, 1], got {v}")
                out[s] = v
            v = float(np.asarray(self.loudness[s], dtype=np.float64).reshape(-1)[0])
            if not math.isfinite(v):
                raise MixfxError(f"FX features: loudness[{s}] must be a finite LUFS value, got {v}")
            loud[s] = v
        for name, table in zip(FEATURE_NAMES, (eq, comp, imager, pan, loud)):
            object.__setattr__(self, name, MappingProxyType(table))

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.eq)

    def smoothed(self) -> FXNormFeatures:
        """A copy with every EQ curve passed through :func:`smooth_eq`."""
        return replace(self, eq={s: smooth_eq(c, s) for s, c in self.eq.items()})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the features to an ``.npz`` file atomically (no pickled objects)."""
        path = Path(path)
        arrays = {"format": np.array(NPZ_FORMAT), "version": np.array(NPZ_VERSION),
                  "sample_rate": np.array(self.sample_rate), "n_fft": np.array(self.n_fft),
                  "stems": np.array(self.stems)}
        for s in self.stems:
            arrays[f"eq.{s}"] = np.asarray(self.eq[s], dtype=np.float32)
            arrays[f"compression.{s}"] = np.asarray(self.compression[s], dtype=np.float64)
            for name in ("imager", "panning", "loudness"):
                arrays[f"{name}.{s}"] = np.array(getattr(self, name)[s], dtype=np.float64)
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)
        return path


NPZ_FORMAT = "mixfx.fxnorm.features"
NPZ_VERSION = 1
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays, dtypes and scalars and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return getattr(importlib.import_module(module), name)


def load_features(path: str | os.PathLike, *, smooth: bool = True) -> FXNormFeatures:
    """Load FX-normalization features from our ``.npz`` or the official pickled ``.npy``.

    The official file is read with a restricted unpickler (numpy arrays only, no code runs).
    Like the official loader, EQ curves are re-smoothed (Savitzky–Golay, :func:`smooth_eq`) unless
    ``smooth`` is False. The official file has no ``panning`` entry; it loads as 0.5 (the
    official normalization forces a 50/50 L/R balance).

    Raises:
        MixfxError: missing, unreadable or corrupt file, wrong keys, or invalid values.
    """
    path = Path(path)
    if not path.is_file():
        raise MixfxError(f"{path}: features file not found")
    with open(path, "rb") as f:
        head = f.read(6)
    try:
        if head.startswith(b"PK"):
            features = _load_npz(path)
        elif head == b"\x93NUMPY":
            features = _load_official_npy(path)
        else:
            raise MixfxError("not an .npz or .npy features file")
    except MixfxError as err:
        msg = str(err)
        raise MixfxError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except Exception as err:  # corrupt archives/pickles raise many types
        raise MixfxError(f"{path}: cannot read features ({type(err).__name__}: {err})".splitlines()[0]) from None
    return features.smoothed() if smooth else features


def _load_npz(path: Path) -> FXNormFeatures:
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        if "format" not in keys or str(data["format"]) != NPZ_FORMAT:
            raise MixfxError(f"not a mixfx features archive (keys: {', '.join(sorted(keys)[:6])})")
        stems = [str(s) for s in data["stems"]]
        missing = [f"{n}.{s}" for n in FEATURE_NAMES for s in stems if f"{n}.{s}" not in keys]
        if missing:
            raise MixfxError(f"missing entries {', '.join(missing)}")
        tables = {n: {s: data[f"{n}.{s}"] for s in stems} for n in FEATURE_NAMES}
        return FXNormFeatures(**tables, sample_rate=int(data["sample_rate"]), n_fft=int(data["n_fft"]))


def _load_official_npy(path: Path) -> FXNormFeatures:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype != np.dtype(object) or shape != ():
            raise MixfxError(f"expected a pickled dict (0-d object array), got dtype {dtype} shape {shape}")
        obj = _NumpyOnlyUnpickler(f).load()
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise MixfxError(f"expected a dict of features, got {type(obj).__name__}")
    required = ("eq", "compression", "imager", "loudness")
    missing = [k for k in required if k not in obj]
    if missing:
        raise MixfxError(f"missing keys {', '.join(missing)} (found {', '.join(map(str, obj))})")
    tables = {k: dict(obj[k]) for k in required}
    tables["panning"] = {s: 0.5 for s in tables["eq"]}
    return FXNormFeatures(**tables)
