"""Record (or recompute) the golden outputs of FX normalization, the two models and the two trainers.

``python tests/golden/record_fxnorm_train.py`` (``OMP_NUM_THREADS=1``; it imports this checkout's ``mixfx``)
writes ``tests/golden/data/fxnorm_train.npz``; ``test_golden_fxnorm_train.py`` recomputes every
case with :func:`compute` and compares. Everything is seeded and runs on CPU:

* ``fxnorm.*``: the five features measured on two synthetic stems, the full normalization of
  each stem (the other's features as targets; the near-mono one goes through the Haas step), and
  the dataset pipeline (``compute_features`` averages and a ``normalize_dataset`` output) on a
  3-song synthetic set.
* ``model.*``: tiny FXencoder and MixFXcloner forward outputs (``torch.manual_seed(0)``).
* ``train.*``: a 3-step tiny run of each trainer: every logged loss (``metrics.csv``, 6
  significant digits) and per-tensor sums of the final weights (float64).

Long signals are kept as strided samples plus ``[sum, sum of squares, max |x|]`` summaries, so
the file stays small (< 1 MB).

The ``train`` part was re-recorded when cloner training began to log ``level_db`` (issue 10): its 25
earlier arrays recomputed equal (1e-6) and only ``train.cloner.metrics.{train,valid}.level_db`` were added.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent / "data" / "fxnorm_train.npz"
SR = 44100
STRIDE = 97
TIMING_METRICS = ("data_share", "fx_share", "audio_seconds_per_second")


def _summary(x) -> dict[str, np.ndarray]:
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    return {"strided": a.reshape(-1)[::STRIDE].copy(),
            "stats": np.array([a.sum(), np.square(a).sum(), np.abs(a).max(initial=0.0)])}


def _put(out: dict, key: str, x) -> None:
    for k, v in _summary(x).items():
        out[f"{key}.{k}"] = v


def synthetic_stems() -> dict[str, torch.Tensor]:
    """Two 2 s stereo stems: decaying noise bursts (wide) and a near-mono harmonic tone with tremolo."""
    g = np.random.default_rng(1234)
    n = 2 * SR
    t = np.arange(n) / SR
    env = np.zeros(n)
    for start in range(0, n, SR // 4):
        k = np.arange(n - start)
        env[start:] += np.exp(-k / (0.03 * SR)) * (0.4 + 0.6 * g.random())
    noise = g.standard_normal((2, n))
    drums = 0.5 * env * (0.7 * noise[0] + 0.3 * noise[1]), 0.5 * env * (0.3 * noise[0] + 0.7 * noise[1])
    tone = sum(np.sin(2 * np.pi * 220.0 * h * t) / h for h in (1, 2, 3, 5))
    trem = 0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t) ** 2
    mono = 0.2 * tone * trem
    vocals = mono + 0.001 * noise[0], mono + 0.001 * noise[1]
    return {"drums": torch.tensor(np.stack(drums), dtype=torch.float32),
            "vocals": torch.tensor(np.stack(vocals), dtype=torch.float32)}


def fxnorm_cases(tmp: Path, out: dict) -> None:
    from mixfx.data.synth import make_synth_dataset
    from mixfx.fxnorm.features import FEATURE_NAMES, measure_feature
    from mixfx.fxnorm.matching import normalize_stem
    from mixfx.fxnorm.targets import FXNormFeatures, load_features
    from mixfx.io.audio import load_audio
    from mixfx.pipelines.fx_normalize import compute_features, normalize_dataset

    stems = synthetic_stems()
    measured = {}
    for stem, x in stems.items():
        measured[stem] = {name: measure_feature(x, name, SR) for name in FEATURE_NAMES}
        for name, value in measured[stem].items():
            if name == "eq":
                _put(out, f"fxnorm.features.{stem}.eq", value)
            else:
                out[f"fxnorm.features.{stem}.{name}"] = np.asarray(value, dtype=np.float64)
    # each stem normalized towards the other one's features (stored under both stem names)
    swap = {"drums": "vocals", "vocals": "drums"}
    tables = {name: {s: measured[swap[s]][name] for s in stems} for name in FEATURE_NAMES}
    tables["panning"] = {s: 0.5 for s in stems}
    features = FXNormFeatures(**tables)
    for stem, x in stems.items():
        y = normalize_stem(x, stem, features, rng=np.random.default_rng(5))
        _put(out, f"fxnorm.normalized.{stem}", y)

    root = make_synth_dataset(tmp / "synth", songs=3, seconds=2.0, seed=3)
    feats = load_features(compute_features(root, tmp / "f.npz", seed=2), smooth=False)
    for stem in feats.stems:
        _put(out, f"fxnorm.dataset.eq.{stem}", feats.eq[stem])
        for name in ("compression", "imager", "panning", "loudness"):
            out[f"fxnorm.dataset.{name}.{stem}"] = np.asarray(getattr(feats, name)[stem], dtype=np.float64)
    normalized = normalize_dataset(root, tmp / "f.npz", tmp / "norm", splits=("test",), seed=1)
    for wav in sorted(normalized.glob("test/*/*.wav")):
        _put(out, f"fxnorm.dataset.test.{wav.stem}", load_audio(wav))


def model_cases(out: dict) -> None:
    from mixfx.models.cloner import ClonerConfig, MixFXCloner
    from mixfx.models.encoder import FXEncoder, FXEncoderConfig

    torch.manual_seed(0)
    encoder = FXEncoder(FXEncoderConfig.tiny()).eval()
    cloner = MixFXCloner(ClonerConfig.tiny()).eval()
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(3, 2, 8192, generator=g)
    with torch.no_grad():
        z = encoder(x)
        y = cloner(x, z)
    out["model.encoder"] = z.double().numpy()
    _put(out, "model.cloner", y)


def _metrics(run: Path) -> dict[str, np.ndarray]:
    rows: dict[str, list[tuple[int, float]]] = {}
    with open(run / "metrics.csv") as f:
        for r in csv.DictReader(f):
            if r["name"] not in TIMING_METRICS:
                rows.setdefault(f"{r['kind']}.{r['name']}", []).append((int(r["step"]), float(r["value"])))
    return {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}


def _weights(checkpoint: Path) -> np.ndarray:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    sd = state["state_dict"] if "state_dict" in state else state["model"]
    return np.array([float(v.double().sum()) for _, v in sorted(sd.items()) if torch.is_tensor(v) and v.is_floating_point()])


def train_cases(tmp: Path, out: dict) -> None:
    from mixfx.data.synth import make_synth_dataset
    from mixfx.pipelines.train_cloner import train_cloner
    from mixfx.pipelines.train_encoder import train_encoder
    from mixfx.models.cloner import ClonerConfig
    from mixfx.train.config import ClonerTrainConfig, EncoderTrainConfig

    root = make_synth_dataset(tmp / "train_synth", songs=4, seconds=2.0, seed=0)
    enc_cfg = EncoderTrainConfig.tiny(variant="ps", contents=2, seconds=(0.5, 1.0), steps=3, val_every=3, val_batches=1,
                                      checkpoint_every=3, log_every=1, d0=32)
    enc = train_encoder(root, tmp / "enc", enc_cfg, device="cpu", allow_unnormalized=True)
    for k, v in _metrics(tmp / "enc").items():
        out[f"train.encoder.metrics.{k}"] = v
    out["train.encoder.weights"] = _weights(enc)
    # the tiny TCN as recorded, before the preset gained ``input_skip`` (a deliberate change, not a move)
    cl_cfg = ClonerTrainConfig.tiny(batch=2, seconds=0.5, steps=3, val_every=3, checkpoint_every=3, log_every=1,
                                    cloner=ClonerConfig.tiny().to_dict())
    cl = train_cloner(root, enc, tmp / "cloner", cl_cfg, device="cpu")
    for k, v in _metrics(tmp / "cloner").items():
        out[f"train.cloner.metrics.{k}"] = v
    out["train.cloner.weights"] = _weights(cl)


def compute(parts: tuple[str, ...] = ("fxnorm", "model", "train")) -> dict[str, np.ndarray]:
    """Every golden value of ``parts``, keyed ``<part>.<case>...``."""
    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "fxnorm" in parts:
            fxnorm_cases(tmp, out)
        if "model" in parts:
            model_cases(out)
        if "train" in parts:
            train_cases(tmp, out)
    return out


def main(argv: list[str]) -> None:
    """Record all parts, or only those named (the others are kept from the file).

    ``--out PATH`` writes the named parts to ``PATH`` instead, leaving the recording alone (the test
    computes each part this way, in a fresh interpreter, so nothing an earlier test left in the
    process, such as compiled kernels or caches, can change the numbers).
    """
    out = None
    if argv[:1] == ["--out"]:
        out, argv = Path(argv[1]), argv[2:]
    parts = tuple(argv) or ("fxnorm", "model", "train")
    if out is not None:
        np.savez(out, **compute(parts))
        return
    kept = {}
    if DATA.is_file():
        with np.load(DATA) as old:
            kept = {k: old[k] for k in old.files if k.split(".")[0] not in parts}
    new = compute(parts)
    DATA.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DATA, **kept, **new)
    print(f"{DATA}: {len(kept) + len(new)} arrays ({DATA.stat().st_size} bytes); recorded {', '.join(parts)}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mixfx, not an installed one
    torch.set_num_threads(1)
    main(sys.argv[1:])
