"""Golden outputs of FX normalization, the tiny models and 3-step training runs (issue 13).

The values in ``data/fxnorm_train.npz`` were recorded by ``record_fxnorm_train.py`` before the
FX-normalization and training code was reorganised; the layout may change, the numbers may not
(identical on CPU up to 1e-6, relative or absolute). Re-record a part only with a change that is
meant to alter it, and say so in the commit message (the ``train`` part was re-recorded twice: by the
commit that moved ``step_generator`` to SeedSequence streams, and by the one that gave the cloner's
dilated conv its two-convolution CPU backward, whose float32 gradients differ in rounding). Each part is computed in a fresh
interpreter (one thread), so the state earlier tests leave in this process cannot change it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import record_fxnorm_train as golden

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    if not golden.DATA.is_file():
        pytest.fail(f"{golden.DATA} is missing: run `python tests/golden/record_fxnorm_train.py`")
    with np.load(golden.DATA) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("part", ["fxnorm", "model", "train"])
def test_outputs_match_the_recording(part, recorded, tmp_path):
    out = tmp_path / f"{part}.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, golden.__file__, "--out", str(out), part], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    with np.load(out) as data:
        new = {k: data[k] for k in data.files}
    old = {k: v for k, v in recorded.items() if k.split(".")[0] == part}
    assert old, f"nothing recorded for {part}"
    assert sorted(new) == sorted(old)
    for key in sorted(old):
        assert new[key].shape == old[key].shape, key
        np.testing.assert_allclose(new[key], old[key], rtol=1e-6, atol=1e-6, err_msg=key)
