"""Peak-aligned FFT convolution for the reverb, with a cache of the IR spectra.

The reverb's wet signal is ``(x * h)[p : p + n]``: the linear convolution read from the IR's
peak ``p`` (the pre-delay before the direct sound removed), cut to the input length ``n``. With
the IR rotated left by ``p`` on an FFT grid of ``N ≥ n + len(h)`` samples, the first ``n``
samples of the *circular* convolution are exactly that slice (the rotated pre-peak samples land
where they fall after the zero padding, no wrap-around reaches ``[0, n)``), so no gather is needed
and the IR spectra can be computed once per FFT size and reused (:class:`IRSpectra`).
"""

from __future__ import annotations

import collections
import threading

import torch


def fft_size(n: int) -> int:
    """Smallest ``2^k``, ``3·2^k``, ``5·2^k`` or ``15·2^k`` ≥ ``n``: four fast sizes per octave.

    A coarse grid (at most 25 % above ``n``) keeps the number of distinct sizes, and so of
    cached spectra, small when segment lengths vary.
    """
    best = None
    for odd in (1, 3, 5, 15):
        size = odd
        while size < n:
            size *= 2
        best = size if best is None else min(best, size)
    return int(best)


def ir_peaks(ir: torch.Tensor) -> torch.Tensor:
    """Index of each IR's peak (largest magnitude over channels): ``(batch, channels, L) -> (batch,)``."""
    return ir.abs().amax(dim=1).argmax(dim=-1)


def aligned_ir_spectra(ir: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``rfft`` of each IR rotated left by its peak, on an ``n_fft`` grid: ``(batch, channels, n_fft//2+1)``."""
    if ir.shape[-1] > n_fft:
        raise ValueError(f"impulse responses of {ir.shape[-1]} samples do not fit an FFT of {n_fft}")
    padded = torch.nn.functional.pad(ir, (0, n_fft - ir.shape[-1]))
    peaks = ir_peaks(ir).tolist()
    rotated = torch.stack([torch.roll(padded[i], -p, dims=-1) for i, p in enumerate(peaks)])
    return torch.fft.rfft(rotated, n=n_fft)


def aligned_convolution(x: torch.Tensor, spectra: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``(x * h)[p : p + n]`` for each example, from :func:`aligned_ir_spectra` (``n_fft ≥ n + L``)."""
    n = x.shape[-1]
    spec = torch.fft.rfft(x, n=n_fft)
    spec.mul_(spectra.to(spec.dtype))
    return torch.fft.irfft(spec, n=n_fft)[..., :n]


class IRSpectra:
    """The aligned spectra of an IR bank, per device and FFT size (least recently used first out).

    Args:
        irs: ``(n_irs, 2, L)`` impulse responses.
        max_bytes: memory the cache may hold, all entries together; a size that alone exceeds it
            is computed for the batch's IRs only and not kept.
    """

    def __init__(self, irs: torch.Tensor, *, max_bytes: int = 1 << 30) -> None:
        self.irs = irs
        self.max_bytes = max_bytes
        self._max_peak = int(ir_peaks(irs).max()) if irs.shape[0] else 0
        self._cache: collections.OrderedDict[tuple, torch.Tensor] = collections.OrderedDict()
        self._lock = threading.Lock()

    def ir_length(self, n: int) -> int:
        """IR samples kept for inputs of ``n`` samples.

        Only the first ``peak + n`` can reach the output (it ends ``n`` samples after each peak);
        that count is rounded up on the :func:`fft_size` grid so that varying segment lengths
        share a few cached spectra (the extra samples change nothing: the FFT covers them).
        """
        return min(self.irs.shape[-1], fft_size(self._max_peak + n))

    def n_fft(self, n: int) -> int:
        """FFT size for inputs of ``n`` samples."""
        return fft_size(n + self.ir_length(n))

    def convolve(self, x: torch.Tensor, ir_index: torch.Tensor) -> torch.Tensor:
        """Peak-aligned convolution of each example of ``x`` ``(batch, 2, n)`` with IR ``ir_index[b]``."""
        n = x.shape[-1]
        length, n_fft = self.ir_length(n), self.n_fft(n)
        key = (x.device, n_fft, length)
        index = ir_index.to(x.device)
        irs = self.irs[..., :length]
        nbytes = irs.shape[0] * irs.shape[1] * (n_fft // 2 + 1) * 8
        if nbytes > self.max_bytes:  # too big to keep: the batch's IRs only
            picked = irs.to(device=x.device, dtype=torch.float32)[index]
            return aligned_convolution(x, aligned_ir_spectra(picked, n_fft), n_fft)
        with self._lock:
            bank = self._cache.get(key)
            if bank is None:
                bank = aligned_ir_spectra(irs.to(device=x.device, dtype=torch.float32), n_fft)
                while self._cache and sum(v.numel() * 8 for v in self._cache.values()) + nbytes > self.max_bytes:
                    self._cache.popitem(last=False)
                self._cache[key] = bank
            self._cache.move_to_end(key)
        return aligned_convolution(x, bank[index], n_fft)
