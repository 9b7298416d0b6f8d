"""Log-mel front end of the spectral FXencoder variant (``FXEncoderConfig(frontend="logmel")``).

The paper's FXencoder reads the raw waveform and must learn its own filterbank. On a CPU budget it
does not: after a few hundred steps the waveform encoders solve the contrastive task with level,
stereo and dynamics cues but stay at chance on EQ (README, "Does it learn?"). This front end hands
the residual blocks what EQ, pan and the imager act on directly, so the learning can be spent on
separating effects from content (whether it is, at CPU budgets, is measured in the README):

* a Hann STFT (``n_fft``, ``hop``) of the left, right, mid ``(L+R)/2`` and side ``(L−R)/2`` signals;
* ``n_mels`` triangular HTK-mel bands of each power spectrum;
* ``log10(band power + 1e-8)`` (bels: about −8 … 1, so the blocks' residual sums stay in range).

Output ``(batch, 4·n_mels, frames)`` with ``frames = ceil(samples / hop)`` (``center=True``, zero
padding, so any input of ≥ 1 sample works). Parameter-free: the window and the filterbank are
non-persistent buffers, so a checkpoint's state dict holds only the blocks.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

_EPS = 1e-12
LOG_FLOOR = 1e-8
"""Power floor of the log (−80 dB re full scale)."""


@functools.lru_cache(maxsize=8)
def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 20.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK-mel filters ``(n_mels, n_freqs)`` over the rfft bins ``0 … sample_rate/2``.

    .. math:: m(f) = 2595 \\log_{10}(1 + f / 700)

    Filters have unit peak; centres are equally spaced in mel between ``f_min`` and ``f_max``.
    """
    f_max = f_max or sample_rate / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_freqs)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(mid - lo, _EPS)
    down = (hi - freqs[None]) / np.maximum(hi - mid, _EPS)
    return torch.from_numpy(np.clip(np.minimum(up, down), 0.0, None)).float()


class LogMelFrontEnd(nn.Module):
    """Stereo audio ``(B, 2, T)`` → log-mel bands of L, R, mid and side ``(B, 4·n_mels, ceil(T / hop))``.

    Args:
        sample_rate: audio rate in Hz (sets the mel centres).
        n_fft: STFT size.
        hop: STFT hop (samples per output frame).
        n_mels: mel bands per signal.
    """

    signals = 4

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int) -> None:
        super().__init__()
        self.n_fft, self.hop, self.n_mels = int(n_fft), int(hop), int(n_mels)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("mel", mel_filterbank(self.n_fft // 2 + 1, self.n_mels, int(sample_rate)), persistent=False)

    @property
    def out_channels(self) -> int:
        """``4 · n_mels``."""
        return self.signals * self.n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        left, right = x[:, 0], x[:, 1]
        signals = torch.stack([left, right, 0.5 * (left + right), 0.5 * (left - right)], dim=1).reshape(b * 4, t)
        frames = -(-t // self.hop)
        spec = torch.stft(signals.float(), self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)[..., :frames]
        power = spec.real.square() + spec.imag.square()
        bands = torch.matmul(self.mel, power)  # (4B, n_mels, frames)
        return torch.log10(bands + LOG_FLOOR).reshape(b, self.out_channels, frames).to(x.dtype)

    def extra_repr(self) -> str:
        return f"n_fft={self.n_fft}, hop={self.hop}, n_mels={self.n_mels}"


__all__ = ["LOG_FLOOR", "LogMelFrontEnd", "mel_filterbank"]
