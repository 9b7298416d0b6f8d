"""Record (or recompute) the golden numbers of a smallest ``mixeval disentangle --quick`` table.

``python tests/golden/record_disentangle.py`` (``OMP_NUM_THREADS=1``; it imports this checkout's
``mixfx`` / ``mixeval``) writes ``tests/golden/data/disentangle.npz``;
``test_golden_disentangle.py`` recomputes it with :func:`compute` and compares. Everything is seeded
and runs on CPU, in process, in a few seconds: a 7-song × 3 s synthetic dataset (seed 0), one tiny
random-init FXencoder (``torch.manual_seed(0)``), the ``--quick`` recipe shrunk to 3 segments × 3
configurations of 0.5 s, gain and pan as the single effects, 2 seeds, one 1-tree forest per factor,
no figures. Recorded: every numeric column of ``table1.csv`` (encoder, pure-noise and ideal rows)
as ``disentangle.table1.<column>``, the row count, and the ``value`` column of the long
``scores.csv`` (every metric per seed, case and subset, in file order) as ``disentangle.scores.value``.

Recorded after the FX core and training code were moved (issue 13); the other golden files, recorded
before those moves and still passing, show the moves left the numbers alone. Re-recorded when DCI's
default forests became the numba backend (issue 10): before that, ``compute("sklearn")`` reproduced
the previous recording exactly, and the default changed only the DCI Expl columns and scores.
The ``metric`` column of ``scores.csv`` was added to the recording later (as
``disentangle.scores.metric``, the values left as recorded) so that the test can give SAP its own
tolerance (see ``test_golden_disentangle.py``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent / "data" / "disentangle.npz"


def compute(dci_backend: str = "auto") -> dict[str, np.ndarray]:
    """The Table 1 and long-score numbers of the smallest disentangle run (keys ``disentangle.*``)."""
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from mixeval.evalset import EvalSetConfig
    from mixeval.pipelines.disentangle import DisentangleConfig, run_disentangle
    from mixfx.data.synth import make_synth_dataset
    from mixfx.fx.ir import synthetic_ir_bank
    from mixfx.io.audio import save_audio
    from mixfx.io.checkpoint import save_model_checkpoint
    from mixfx.models.encoder import FXEncoder, FXEncoderConfig

    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as d, threadpool_limits(1):
        tmp = Path(d)
        data = make_synth_dataset(tmp / "data", songs=7, seconds=3.0, seed=0)
        torch.manual_seed(0)
        encoder = save_model_checkpoint(tmp / "enc.pt", FXEncoder(FXEncoderConfig.tiny()), extra={"label": "tiny"})
        bank = synthetic_ir_bank(per_group=1, groups_s=((0.2, 0.3), (0.5, 0.6)))
        for i in range(len(bank)):
            save_audio(tmp / "irs" / f"ir{i}.wav", bank.irs[i, :, : int(bank.lengths[i])], 44100)
        ev = EvalSetConfig(segments=3, configs=3, seconds=0.5, segments_per_song=2, single_fx=("gain", "pan"))
        cfg = DisentangleConfig.quick(evalset=ev, dci_trees=1, n_jobs=1, figures=False, tsne_single="effect",
                                      dci_backend=dci_backend)
        run_disentangle([encoder], data, tmp / "report", config=cfg, ir_dir=tmp / "irs")
        table = pd.read_csv(tmp / "report" / "table1.csv")
        scores = pd.read_csv(tmp / "report" / "scores.csv")
    out["disentangle.rows"] = np.array([len(table)])
    for column in table.columns:
        if pd.api.types.is_numeric_dtype(table[column]):
            out[f"disentangle.table1.{column}"] = table[column].to_numpy(dtype=np.float64)
    out["disentangle.scores.value"] = scores["value"].to_numpy(dtype=np.float64)
    out["disentangle.scores.metric"] = scores["metric"].to_numpy(dtype=str)
    return out


def main(argv: list[str]) -> None:
    """Record the table; ``--out PATH`` writes it to ``PATH`` instead, leaving the recording alone."""
    if argv[:1] == ["--out"]:
        np.savez(Path(argv[1]), **compute())
        return
    DATA.parent.mkdir(parents=True, exist_ok=True)
    new = compute()
    np.savez_compressed(DATA, **new)
    print(f"{DATA}: {len(new)} arrays ({DATA.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's code, not an installed one
    torch.set_num_threads(1)
    main(sys.argv[1:])
