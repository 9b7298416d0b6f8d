"""The compressor's static curve: one definition in torch, one compiled copy per backend, all equal.

``mixfx.fx.effects.compressor.static_reduction_db`` is the definition; the numba kernel calls the
scalar ``_static_reduction_db`` of :mod:`mixfx.fx.kernels._numba` and the Triton kernel the
``@triton.jit`` helper of the same name in :mod:`mixfx.fx.kernels._triton` (run here through
Triton's interpreter on CPU, in a fresh process, when Triton is installed).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mixfx.fx.effects.compressor import static_reduction_db
from mixfx.fx.kernels import _numba

THRESHOLDS = (-40.0, -20.0, -6.0, 0.0)
RATIOS = (1.0, 1.5, 4.0, 20.0, 100.0)
KNEES = (0.0, 0.5, 6.0, 12.0)


def _grid() -> np.ndarray:
    """Rows ``(level, threshold, ratio, knee)``: a level sweep plus every knee edge and its neighbours."""
    rows = []
    for t, r, w in itertools.product(THRESHOLDS, RATIOS, KNEES):
        levels = list(np.linspace(-90.0, 12.0, 52))
        levels += [t + s * w / 2 + d for s in (-1, 1) for d in (-1e-6, 0.0, 1e-6)] + [t]
        rows += [(level, t, r, w) for level in levels]
    return np.array(rows, dtype=np.float64)


def test_the_curve_matches_a_hand_computation():
    """Independent values: below the knee 0; above it (1 − 1/R)(x − T); in the knee (1 − 1/R)(x − T + W/2)²/(2W)."""
    level = torch.tensor([-30.0, -10.0, -10.0, -20.0, -17.0, -23.0], dtype=torch.float64)
    knee = torch.tensor([0.0, 0.0, 6.0, 6.0, 6.0, 6.0], dtype=torch.float64)
    got = static_reduction_db(level, -20.0, 4.0, knee)
    expected = [0.0, 7.5, 7.5, 0.75 * 9 / 12, 0.75 * 36 / 12, 0.0]  # the last sits on the lower knee edge
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.skipif(not _numba.HAVE_NUMBA, reason="numba is not installed")
def test_numba_helper_equals_the_torch_definition():
    grid = _grid()
    level, t, r, w = (torch.from_numpy(grid[:, i].copy()) for i in range(4))
    expected = static_reduction_db(level, t, r, w).numpy()
    got = np.array([_numba._static_reduction_db(lv, tv, 1.0 / rv - 1.0, wv) for lv, tv, rv, wv in grid])
    assert (got >= 0).all() and (expected > 0).sum() > len(grid) // 4  # the grid reaches the compressed region
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


TRITON_CHECK = textwrap.dedent(
    """
    import sys
    import numpy as np, torch, triton, triton.language as tl
    sys.path.insert(0, sys.argv[1])
    from test_fx_compressor_curve import _grid
    from mixfx.fx.effects.compressor import static_reduction_db
    from mixfx.fx.kernels import _triton

    @triton.jit
    def curve(level_ptr, t_ptr, slope_ptr, w_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        args = [tl.load(p + offs, mask=mask, other=0.0) for p in (level_ptr, t_ptr, slope_ptr, w_ptr)]
        tl.store(out_ptr + offs, _triton._static_reduction_db(*args), mask=mask)

    grid = torch.from_numpy(_grid()).float()
    level, t, r, w = (c.contiguous() for c in grid.unbind(1))
    out = torch.empty_like(level)
    curve[(triton.cdiv(len(level), 256),)](level, t, (1.0 / r - 1.0).contiguous(), w, out, len(level), BLOCK=256)
    expected = static_reduction_db(level.double(), t.double(), r.double(), w.double())
    print(float((out.double() - expected).abs().max()))
    """
)


def test_triton_helper_equals_the_torch_definition():
    pytest.importorskip("triton")
    here = Path(__file__).resolve().parent
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(here.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", TRITON_CHECK, str(here)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    # float32 in the kernel: levels up to 90 dB, so a few 1e-5 dB of rounding
    assert float(run.stdout.split()[-1]) < 1e-4, run.stdout
