"""Per-stem FX-normalization feature tables and their files.

:class:`FXNormFeatures` holds one target per stem and feature (see
:mod:`mixfx.fxnorm.features` for what each feature measures). It saves to ``.npz`` (no
pickled objects) and :func:`load_features` reads either that or the official pickled
``musdb18_fxfeatures_eqcompimagegain.npy`` through a restricted unpickler that can only rebuild
numpy arrays, dtypes and scalars, so loading a file never runs code. Like the official loader,
EQ curves are smoothed again at load time (Savitzky–Golay, order 1, window 151 for drums and
bass, 401 otherwise).
"""

from __future__ import annotations

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

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fxnorm.features import FEATURE_NAMES, FFT_SIZE
from mixfx.io.atomic import atomic_write

EQ_SMOOTH_WINDOWS = {"drums": 151, "bass": 151, "other": 401, "vocals": 401}
EQ_SMOOTH_DEFAULT = 401


def smooth_eq(curve: np.ndarray, stem: str) -> np.ndarray:
    """Savitzky–Golay smoothing of an EQ curve (order 1, mirror; window 151 drums/bass, 401 others)."""
    window = EQ_SMOOTH_WINDOWS.get(stem, EQ_SMOOTH_DEFAULT)
    window = min(window, curve.shape[-1] - (1 - curve.shape[-1] % 2))
    return scipy.signal.savgol_filter(np.asarray(curve, dtype=np.float64), window, 1, mode="mirror")


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

    @classmethod
    def load(cls, path: str | os.PathLike, *, smooth: bool = True) -> FXNormFeatures:
        """Same as :func:`load_features`."""
        return load_features(path, smooth=smooth)

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
        if version not in ((1, 0), (2, 0)):
            raise MixfxError(f"unsupported .npy format version {version[0]}.{version[1]} (expected 1.0 or 2.0)")
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
