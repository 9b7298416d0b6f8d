"""Peak-aligned FFT convolution and the IR-spectrum cache against numpy's direct convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixfx.fx.convolution import IRSpectra, aligned_convolution, aligned_ir_spectra, fft_size


def direct(x: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """``(x * h)[p : p + n]`` per example and channel with np.convolve (p = the IR's peak)."""
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        peak = int(ir[b].abs().amax(0).argmax())
        for c in range(x.shape[1]):
            full = np.convolve(x[b, c].double().numpy(), ir[b, c].double().numpy())
            out[b, c] = torch.from_numpy(full[peak : peak + x.shape[-1]])
    return out


def random_irs(n_irs: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    irs = 0.3 * torch.randn(n_irs, 2, length, generator=g) * torch.exp(-torch.arange(length) / (length / 5))
    for i in range(n_irs):  # a peak after a different pre-delay in each IR
        irs[i, i % 2, 7 * i + 3] = 2.0
    return irs


def test_fft_size_grid():
    assert [fft_size(n) for n in (1, 2, 3, 5, 6, 1000, 1025, 65537)] == [1, 2, 3, 5, 6, 1024, 1280, 81920]
    for n in range(1, 5000, 37):
        size = fft_size(n)
        assert n <= size <= 1.25 * n + 1
        odd = size
        while odd % 2 == 0:
            odd //= 2
        assert odd in (1, 3, 5, 15)


def test_aligned_convolution_equals_direct_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 500, generator=g)
    ir = random_irs(3, 300, seed=1)
    n_fft = fft_size(500 + 300)
    got = aligned_convolution(x, aligned_ir_spectra(ir, n_fft), n_fft)
    assert torch.allclose(got, direct(x, ir), atol=1e-4)


@pytest.mark.parametrize("n", [64, 400, 3000])
def test_cached_bank_spectra_give_the_same_wet_signal(n):
    """Short inputs (IR truncated after peak + n) and long ones; the second call reads the cache."""
    irs = random_irs(5, 1500, seed=2)
    bank = IRSpectra(irs)
    x = torch.randn(4, 2, n, generator=torch.Generator().manual_seed(3))
    index = torch.tensor([4, 0, 2, 4])
    expected = direct(x, irs[index])
    for _ in range(2):
        assert torch.allclose(bank.convolve(x, index), expected, atol=1e-4)
    assert len(bank._cache) == 1
    tiny_budget = IRSpectra(irs, max_bytes=1)  # too big to keep: computed for the batch only
    assert torch.allclose(tiny_budget.convolve(x, index), expected, atol=1e-4)
    assert len(tiny_budget._cache) == 0
