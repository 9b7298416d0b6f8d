"""Record the FX core's golden outputs (fixed seeds) into ``tests/golden/data/fx_golden.npz``.

Run from the repository root: ``OMP_NUM_THREADS=1 python tests/golden/record_fx.py``. It records,
for each CPU backend, the FXmanipulator output of four stems (stereo, 0.5 s) per single effect,
with every effect on and with the official probabilities, plus the sampled configurations
(factor matrices, names, parameter tables) and the evaluation set's factors on a tiny sample.

The audio is kept as a SHA-256 of the full output (the bit-identical check) plus a subsample
(every 32nd sample and the first 256 samples) and per-channel float64 energies, for the ≤ 1e-6
comparison where float order legitimately changes; the whole file stays well under 1 MB.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "data" / "fx_golden.npz"
SR = 44100
SAMPLES = SR // 2
STEMS4 = ["drums", "bass", "other", "vocals"]
BACKENDS = ("auto", "scan")  # numba and plain torch on CPU; Triton is GPU-only
STRIDE, HEAD = 32, 256


def signal() -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    x = 0.1 * torch.randn(4, 2, SAMPLES, generator=g)
    swell = 0.05 + torch.linspace(0, 1, SAMPLES).square()  # a crescendo: the compressor acts over time
    return x * swell * torch.tensor([1.0, 3.0, 0.5, 2.0]).view(-1, 1, 1)


def cases() -> list[tuple[str, dict]]:
    from mixfx.fx.params import FX_NAMES

    out = [(f"single_{fx}", dict(single_fx=fx)) for fx in FX_NAMES]
    return out + [("all_on", dict(all_on=True)), ("official", {})]


def all_on():
    from mixfx.fx.params import FXProbabilities

    return FXProbabilities(1.0, 1.0, 1.0, 1.0, 1.0, {k: 1.0 for k in ("drums", "bass", "other", "vocals", "mixture")})


def digest(y: torch.Tensor) -> str:
    return hashlib.sha256(y.contiguous().numpy().tobytes()).hexdigest()


def audio_record(y: torch.Tensor) -> dict[str, np.ndarray]:
    return {"sub": y[..., ::STRIDE].numpy(), "head": y[..., :HEAD].numpy(),
            "energy": y.double().square().sum(-1).numpy()}


def chain_outputs() -> dict[str, np.ndarray]:
    from mixfx.fx.chain import FXManipulator

    rec: dict[str, np.ndarray] = {}
    x = signal()
    base = FXManipulator(sample_rate=SR)
    for seed, (name, kw) in enumerate(cases()):
        cfg = base.sample(4, generator=torch.Generator().manual_seed(100 + seed), stems=STEMS4,
                          single_fx=kw.get("single_fx"), probabilities=all_on() if kw.get("all_on") else None)
        rec[f"cfg/{name}/factors"] = cfg.factor_matrix().numpy()
        rec[f"cfg/{name}/names"] = np.array(cfg.factor_names())
        table = cfg.table()
        rec[f"cfg/{name}/table_labels"] = np.array([f"{e}.{p}|{u}" for e, p, u in
                                                    zip(table.effect, table.parameter, table.unit)])
        rec[f"cfg/{name}/table_values"] = table.value.to_numpy(np.float64)
        rec[f"cfg/{name}/table_applied"] = table.applied.to_numpy(bool)
        for backend in BACKENDS:
            y = FXManipulator(sample_rate=SR, backend=backend, ir_bank=base.ir_bank).apply(x, cfg)
            rec[f"audio/{backend}/{name}/sha256"] = np.array(digest(y))
            for k, v in audio_record(y).items():
                rec[f"audio/{backend}/{name}/{k}"] = v
    return rec


def evalset_factors() -> dict[str, np.ndarray]:
    from mixeval.evalset import EvalSetConfig, Segment, sample_item_set
    from mixeval.evalset_factors import factor_table, item_factors
    from mixfx.fx.chain import FXManipulator
    from mixfx.fx.ir import synthetic_ir_bank

    chain = FXManipulator(ir_bank=synthetic_ir_bank(per_group=1, groups_s=((0.2, 0.3), (0.5, 0.6))))
    segs = [Segment(f"song{i}", i, 0) for i in range(4)]
    ev = EvalSetConfig(segments=4, configs=3)
    rec: dict[str, np.ndarray] = {}
    for mode in ("full", "eq", "compressor", "pan", "imager", "reverb", "gain"):
        for protocol in ("paper", "iid"):
            items = sample_item_set(chain, segs, ev, seed=3, mode=mode, protocol=protocol)
            for kind in ("drums", "vocals", "mixture"):
                for categorical in ("drop", "onehot"):
                    fs = item_factors(items, kind, categorical=categorical)
                    key = f"evalset/{mode}/{protocol}/{kind}/{categorical}"
                    rec[key + "/matrix"] = fs.matrix
                    rec[key + "/names"] = np.array(fs.names)
                    rec[key + "/dropped"] = np.array(sorted(f"{k}: {v}" for k, v in fs.dropped.items()))
            table = factor_table(items)
            rec[f"evalset/{mode}/{protocol}/table_columns"] = np.array(list(table.columns))
            rec[f"evalset/{mode}/{protocol}/table_factors"] = table.iloc[:, 8:].to_numpy(np.float64)
    return rec


def record() -> dict[str, np.ndarray]:
    torch.manual_seed(0)
    return {**chain_outputs(), **evalset_factors()}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = record()
    np.savez_compressed(OUT, **data)
    print(f"{OUT}: {len(data)} arrays, {OUT.stat().st_size} bytes")
