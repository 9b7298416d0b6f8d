"""The Triton kernels (CUDA path) against the numba CPU kernels and the chain's reference.

Without a GPU they run on CPU tensors through Triton's interpreter, which must be switched on
before Triton is imported: the checks run in a fresh interpreter process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("triton")

CHECKS = textwrap.dedent(
    """
    import torch
    from mixfx.fx import functional as F
    from mixfx.fx.kernels import _numba as kernels, _triton as gpu_kernels
    from mixfx.fx.chain import FXManipulator
    from mixfx.fx.params import FXProbabilities
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    assert gpu_kernels.available(torch.zeros(1, device=dev)), "no CUDA and no Triton interpreter"
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(3, 2, 1500, generator=g)
    def rel(a, b):
        return float((a.cpu() - b).abs().max() / b.abs().max())
    # compressor: soft and hard knees, thresholds the signal crosses, several scan blocks
    kw = dict(threshold_db=torch.tensor([-30.0, -10.0, -50.0]), ratio=torch.tensor([4.0, 10.0, 20.0]),
              attack_ms=torch.tensor([1.0, 5.0, 20.0]), release_ms=torch.tensor([50.0, 200.0, 500.0]),
              knee_db=torch.tensor([0.0, 6.0, 3.0]))
    ref = F.compressor(x, 44100, backend="numba" if kernels.HAVE_NUMBA else "torch", **kw)
    out = F.compressor(x.to(dev), 44100, backend="triton", **{k: v.to(dev) for k, v in kw.items()})
    assert not torch.allclose(ref, x)
    print("compressor", rel(out, ref))
    # five-band EQ through the in-place spectrum kernel (30 Hz shelf: poles near z = 1)
    bands = ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")
    p = {}
    for i, band in enumerate(bands):
        p[f"{band}_gain_db"] = torch.tensor([12.0, -15.0, 6.0])
        p[f"{band}_hz"] = torch.tensor([30.0, 200.0, 900.0]) * (1 + 2 * i)
        p[f"{band}_q"] = torch.tensor([0.1, 0.707, 2.0])
    ref = F.equalizer(x, 44100, backend="numba" if kernels.HAVE_NUMBA else "torch", **p)
    out = F.equalizer(x.to(dev), 44100, backend="triton", **{k: v.to(dev) for k, v in p.items()})
    print("equalizer", rel(out, ref))
    # the whole chain, all effects on, drums routing included
    on = FXProbabilities(1.0, 1.0, 1.0, 1.0, 1.0, {k: 1.0 for k in ("drums", "bass", "other", "vocals", "mixture")})
    chain = FXManipulator()
    cfg = chain.sample(3, generator=torch.Generator().manual_seed(1), stems=["drums", "vocals", "bass"], probabilities=on)
    ref = chain.apply(x, cfg)
    out = FXManipulator(backend="triton", ir_bank=chain.ir_bank).apply(x.to(dev), cfg)
    print("chain", rel(out, ref))
    """
)


def test_triton_kernels_match_the_cpu_kernels():
    env = dict(os.environ, TRITON_INTERPRET="0" if torch.cuda.is_available() else "1")
    done = subprocess.run([sys.executable, "-c", CHECKS], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    errors = dict(line.split() for line in done.stdout.strip().splitlines())
    assert set(errors) == {"compressor", "equalizer", "chain"}
    for name, err in errors.items():
        assert float(err) < 1e-4, (name, err)
