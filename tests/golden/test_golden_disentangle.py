"""Golden numbers of the smallest ``mixeval disentangle --quick`` table (issue 13).

``data/disentangle.npz`` was recorded by ``record_disentangle.py`` after the FX core and training
code were moved (the other golden files show those moves left their numbers unchanged), and again
when DCI's default forests became the numba backend (see that script's docstring). The
numbers may not change (1e-6, relative or absolute; NaN where NaN was recorded): re-record only
with a change meant to alter the metrics or the evaluation set, and say so in the commit message.
Computed in a fresh interpreter (one thread), so state earlier tests leave here cannot change it.

One exception, on a CPU of another vendor than the recording's (see ``cpu_vendor.py``): SAP, 1e-4
absolute. SAP scores each code dimension by thresholding it, so codes that differ in the last float
bits between CPUs (the recording was made on an Intel Xeon; on an AMD EPYC the encoder's conv
kernels round differently) move a point across a threshold: there 5 of the 90 SAP values moved by
up to 1.8e-5 while every other number stayed within 1e-6.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import record_disentangle as golden
from cpu_vendor import same_cpu_as_recording

REPO = Path(__file__).resolve().parents[2]


def test_disentangle_table_matches_the_recording(tmp_path):
    if not golden.DATA.is_file():
        pytest.fail(f"{golden.DATA} is missing: run `python tests/golden/record_disentangle.py`")
    with np.load(golden.DATA) as data:
        old = {k: data[k] for k in data.files}
    out = tmp_path / "disentangle.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, golden.__file__, "--out", str(out)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    with np.load(out) as data:
        new = {k: data[k] for k in data.files}
    assert sorted(new) == sorted(old) and len(old) > 10
    metric = old["disentangle.scores.metric"]
    np.testing.assert_array_equal(new["disentangle.scores.metric"], metric)
    for key in sorted(set(old) - {"disentangle.scores.metric"}):
        assert new[key].shape == old[key].shape, key
        if key == "disentangle.scores.value":
            sap = metric == "sap"
            assert sap.sum() == 90
            sap_tolerance = dict(rtol=1e-6, atol=1e-6) if same_cpu_as_recording() else dict(rtol=0, atol=1e-4)
            np.testing.assert_allclose(new[key][sap], old[key][sap], err_msg="sap", **sap_tolerance)
            np.testing.assert_allclose(new[key][~sap], old[key][~sap], rtol=1e-6, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_allclose(new[key], old[key], rtol=1e-6, atol=1e-6, err_msg=key)
