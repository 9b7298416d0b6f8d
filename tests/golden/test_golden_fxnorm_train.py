"""Golden outputs of FX normalization, the tiny models and 3-step training runs (issue 13).

The values in ``data/fxnorm_train.npz`` were recorded by ``record_fxnorm_train.py`` before the
FX-normalization and training code was reorganised; the layout may change, the numbers may not
(identical on CPU up to 1e-6, relative or absolute). Re-record a part only with a change that is
meant to alter it, and say so in the commit message.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import record_fxnorm_train as golden


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    if not golden.DATA.is_file():
        pytest.fail(f"{golden.DATA} is missing: run `python tests/golden/record_fxnorm_train.py`")
    with np.load(golden.DATA) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("part", ["fxnorm", "model", "train"])
def test_outputs_match_the_recording(part, recorded, one_thread):
    torch.manual_seed(0)
    new = golden.compute((part,))
    old = {k: v for k, v in recorded.items() if k.split(".")[0] == part}
    assert old, f"nothing recorded for {part}"
    assert sorted(new) == sorted(old)
    for key in sorted(old):
        assert new[key].shape == old[key].shape, key
        np.testing.assert_allclose(new[key], old[key], rtol=1e-6, atol=1e-6, err_msg=key)
