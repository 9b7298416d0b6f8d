"""Baseline representations for the disentanglement table: the floors an FXencoder must beat.

* :func:`random_encoder` — an FXencoder with random initial weights (architecture prior only);
* :class:`HandcraftedFeatures` — a fixed vector of MFCC, spectral-shape, band-energy, dynamics,
  loudness and stereo statistics (torch only), playing the role the MEE row plays in the paper:
  a representation that sees timbre and level but was not trained to disentangle effects;
* :func:`noise_codes` — pure Gaussian noise of the encoder's size, independent of the audio: the
  chance floor. At 250 samples × 2048 dimensions the reference DCI-RF gives it an explicitness near
  0.8 (in-sample forests, ``metrics_notes.md`` §6), so this row says where "chance" lies.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mixeval.errors import MixevalError
from mixfx import SAMPLE_RATE
from mixfx.fx.loudness import integrated_loudness
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.models.spectral_frontend import mel_filterbank

__all__ = ["HandcraftedFeatures", "noise_codes", "random_encoder"]

_EPS = 1e-10


def random_encoder(config: FXEncoderConfig | None = None, *, seed: int = 0) -> FXEncoder:
    """An FXencoder with PyTorch's default random initialisation, seeded, in eval mode.

    The global RNG is forked (its state is restored afterwards), so the caller's randomness is
    unaffected. In eval mode the BatchNorm layers use their initial statistics (mean 0, variance 1).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = FXEncoder(config or FXEncoderConfig.paper())
    return model.eval()


def noise_codes(n: int, dim: int, *, rng: np.random.Generator) -> np.ndarray:
    """``(n, dim)`` standard-normal codes, independent of any input (the chance floor)."""
    if n < 1 or dim < 1:
        raise MixevalError(f"noise codes: expected n ≥ 1 and dim ≥ 1, got {n} and {dim}")
    return rng.standard_normal((n, dim)).astype(np.float32)


def _dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II ``(n_out, n_in)``: ``X_k = sqrt(2/N) s_k Σ_n x_n cos(π k (n + ½) / N)``."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    m = torch.cos(math.pi * k * (n + 0.5) / n_in) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m.float()


def _mean_std(x: torch.Tensor) -> list[torch.Tensor]:
    """Mean and standard deviation over the last axis (frames)."""
    return [x.mean(-1), x.std(-1, unbiased=False)]


class HandcraftedFeatures(nn.Module):
    """A hand-crafted effects descriptor: stereo audio ``(B, 2, T)`` → ``(B, dim)`` features.

    Per item, from a Hann STFT of the left, right, mid ``(L+R)/2`` and side ``(L−R)/2`` signals:

    * MFCCs (``n_mfcc`` of ``n_mels`` HTK-mel bands, orthonormal DCT of the dB mel spectrum) of the
      mid and of the side signal, mean and std over frames (EQ, timbre, reverb tail);
    * spectral centroid, bandwidth, 85 % roll-off (in units of Nyquist) and flatness of the mid
      signal, mean and std (EQ, brightness);
    * ``n_bands`` bands (groups of mel bands): mid energy relative to the total (dB), side-to-mid
      ratio (dB) and left-to-right balance (dB), mean over frames (EQ, imager, pan per band);
    * dynamics of the mid frame RMS (dB): mean, std, 10th and 90th percentile, peak (dBFS), crest
      factor (dB), and integrated loudness (LUFS, BS.1770) (gain, compression);
    * global inter-channel correlation, side-to-mid ratio and left-to-right balance (imager, pan).

    Deterministic and parameter-free (a baseline, not a model); runs on the input's device.

    Args:
        sample_rate: audio rate in Hz.
        n_fft: STFT size (hop ``n_fft // 4``).
        n_mels: mel bands.
        n_mfcc: cepstral coefficients kept.
        n_bands: bands for the per-band statistics (must divide ``n_mels``).
    """

    checkpoint_kind = None

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, n_fft: int = 2048, n_mels: int = 40, n_mfcc: int = 20,
                 n_bands: int = 8) -> None:
        super().__init__()
        if n_mfcc > n_mels or n_mels % n_bands or min(n_fft, n_mels, n_mfcc, n_bands) < 1:
            raise MixevalError(
                f"HandcraftedFeatures: need 1 ≤ n_mfcc ≤ n_mels and n_bands dividing n_mels, got "
                f"n_mfcc={n_mfcc}, n_mels={n_mels}, n_bands={n_bands}"
            )
        self.sample_rate, self.n_fft, self.hop = int(sample_rate), int(n_fft), int(n_fft) // 4
        self.n_mels, self.n_mfcc, self.n_bands = n_mels, n_mfcc, n_bands
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel", mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate), persistent=False)
        self.register_buffer("dct", _dct_matrix(n_mels, n_mfcc), persistent=False)
        self.register_buffer("freqs", torch.linspace(0.0, 1.0, n_fft // 2 + 1), persistent=False)

    @property
    def dim(self) -> int:
        """Feature size: ``4·n_mfcc + 8 + 3·n_bands + 7 + 3``."""
        return 4 * self.n_mfcc + 8 + 3 * self.n_bands + 7 + 3

    def settings(self) -> dict:
        """The settings that define the features (for cache keys)."""
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "n_mels": self.n_mels, "n_mfcc": self.n_mfcc,
                "n_bands": self.n_bands, "version": 1}

    def _power(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T) → (B, freqs, frames)`` power spectrogram (reflect-padded; short inputs zero-padded)."""
        if x.shape[-1] < self.n_fft:
            x = torch.nn.functional.pad(x, (0, self.n_fft - x.shape[-1]))
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)
        return spec.real.square() + spec.imag.square()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, dim)`` of stereo audio ``(B, 2, T)``."""
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[-1] < 1:
            raise MixevalError(f"HandcraftedFeatures: expected audio (batch, 2, samples), got {tuple(x.shape)}")
        x = x.float()
        left, right = x[:, 0], x[:, 1]
        mid, side = 0.5 * (left + right), 0.5 * (left - right)
        p = {k: self._power(v) for k, v in (("l", left), ("r", right), ("m", mid), ("s", side))}
        feats: list[torch.Tensor] = []
        mel = {k: torch.einsum("mf,bft->bmt", self.mel, p[k]) for k in p}
        for k in ("m", "s"):
            logmel = 10.0 * torch.log10(mel[k] + _EPS)
            feats += _mean_std(torch.einsum("cm,bmt->bct", self.dct, logmel))
        pm = p["m"]
        total = pm.sum(1) + _EPS
        f = self.freqs[None, :, None]
        centroid = (pm * f).sum(1) / total
        bandwidth = torch.sqrt((pm * (f - centroid[:, None]) ** 2).sum(1) / total)
        cum = torch.cumsum(pm, 1) / total[:, None]
        rolloff = self.freqs[(cum < 0.85).sum(1).clamp_max(self.freqs.numel() - 1)]
        flatness = torch.exp(torch.log(pm + _EPS).mean(1)) / (pm.mean(1) + _EPS)
        for v in (centroid, bandwidth, rolloff, flatness):
            feats += _mean_std(v)
        group = lambda m: m.reshape(m.shape[0], self.n_bands, -1, m.shape[-1]).sum(2).mean(-1)  # noqa: E731
        band = {k: group(mel[k]) + _EPS for k in mel}
        db = lambda v: 10.0 * torch.log10(v)  # noqa: E731
        feats += [db(band["m"] / band["m"].sum(1, keepdim=True)), db(band["s"] / band["m"]), db(band["l"] / band["r"])]
        hop = self.hop
        n_frames = max(1, mid.shape[-1] // hop)
        frames = torch.nn.functional.pad(mid, (0, max(0, n_frames * hop - mid.shape[-1])))[:, : n_frames * hop]
        rms_db = db(frames.reshape(mid.shape[0], n_frames, hop).square().mean(-1) + _EPS)
        peak_db = db(x.abs().amax(dim=(1, 2)).square() + _EPS)
        mean_db = db(mid.square().mean(-1) + _EPS)
        q = torch.quantile(rms_db, torch.tensor([0.1, 0.9], device=x.device), dim=1)
        feats += [rms_db.mean(1), rms_db.std(1, unbiased=False), q[0], q[1], peak_db, peak_db - mean_db]
        if x.shape[-1] >= int(0.4 * self.sample_rate):
            lufs = integrated_loudness(x, self.sample_rate).to(x.device, torch.float32)
        else:
            lufs = mean_db - 0.691
        feats.append(torch.nan_to_num(lufs, nan=-70.0, posinf=0.0, neginf=-70.0).clamp_min(-70.0))
        lz, rz = left - left.mean(-1, keepdim=True), right - right.mean(-1, keepdim=True)
        corr = (lz * rz).sum(-1) / torch.sqrt(lz.square().sum(-1) * rz.square().sum(-1) + _EPS)
        feats += [corr, db((side.square().mean(-1) + _EPS) / (mid.square().mean(-1) + _EPS)),
                  db((left.square().mean(-1) + _EPS) / (right.square().mean(-1) + _EPS))]
        out = torch.cat([v if v.ndim == 2 else v[:, None] for v in feats], dim=1)
        return out
