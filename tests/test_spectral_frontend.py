"""The logmel front end of the FXencoder against a numpy STFT, and the encoder built on it."""

import math

import numpy as np
import pytest
import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.models.spectral_frontend import LOG_FLOOR, LogMelFrontEnd, mel_filterbank

SPECTRAL = FXEncoderConfig(channels=(16, 24), kernels=(3, 3), strides=(1, 2), frontend="logmel", n_fft=256, hop=64, n_mels=12)


def _numpy_logmel(signal: np.ndarray, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """Textbook framing: zero-pad n_fft/2 each side, periodic Hann, rfft power, mel bands, log10."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(signal, (n_fft // 2, n_fft // 2))
    frames = math.ceil(len(signal) / hop)
    spec = np.stack([np.fft.rfft(padded[f * hop: f * hop + n_fft] * window) for f in range(frames)], axis=1)
    fb = mel_filterbank(n_fft // 2 + 1, n_mels, SAMPLE_RATE).double().numpy()
    return np.log10(fb @ np.abs(spec) ** 2 + LOG_FLOOR)


@pytest.mark.parametrize("length", [1000, 1024, 300])
def test_logmel_frontend_equals_numpy_stft_of_left_right_mid_side(length):
    x = torch.randn(2, 2, length, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()
    fe = LogMelFrontEnd(SAMPLE_RATE, n_fft=256, hop=64, n_mels=12)
    out = fe(x).numpy()
    assert out.shape == (2, 4 * 12, math.ceil(length / 64))
    xn = x.double().numpy()
    for i in range(2):
        left, right = xn[i, 0], xn[i, 1]
        for k, sig in enumerate((left, right, 0.5 * (left + right), 0.5 * (left - right))):
            np.testing.assert_allclose(out[i, 12 * k: 12 * (k + 1)], _numpy_logmel(sig, 256, 64, 12), atol=2e-4)


def test_logmel_frontend_swapping_channels_swaps_left_and_right_bands():
    x = torch.randn(1, 2, 2000, generator=torch.Generator().manual_seed(1))
    fe = LogMelFrontEnd(SAMPLE_RATE, n_fft=256, hop=64, n_mels=12)
    a, b = fe(x), fe(x.flip(1))
    torch.testing.assert_close(b[:, :12], a[:, 12:24])
    torch.testing.assert_close(b[:, 12:24], a[:, :12])
    torch.testing.assert_close(b[:, 24:], a[:, 24:], atol=1e-4, rtol=1e-4)  # mid same, side sign-flipped: same power


@pytest.mark.parametrize("length", [1, 63, 64, 65, 5000])
def test_spectral_encoder_any_length_and_state_dict_holds_only_the_blocks(length):
    enc = FXEncoder(SPECTRAL).eval()
    with torch.no_grad():
        frames, z = enc.frames(torch.randn(3, 2, length)), enc(torch.randn(3, 2, length))
    assert SPECTRAL.total_stride == 64 * 2
    assert frames.shape == (3, 24, math.ceil(math.ceil(length / 64) / 2))
    assert z.shape == (3, 24) and torch.isfinite(z).all()
    keys = list(enc.state_dict())
    assert keys and all(k.startswith("encoder.") for k in keys)
    assert enc.encoder[0].conv1.conv1d.conv1d.in_channels == 4 * 12


def test_spectral_config_round_trips_and_bad_front_ends_are_rejected():
    assert FXEncoderConfig.from_dict(SPECTRAL.to_dict()) == SPECTRAL
    assert FXEncoderConfig.from_dict({k: v for k, v in FXEncoderConfig.tiny().to_dict().items()
                                      if k not in ("frontend", "n_fft", "hop", "n_mels")}) == FXEncoderConfig.tiny()
    with pytest.raises(MixfxError, match="frontend"):
        FXEncoderConfig(frontend="cqt")
    with pytest.raises(MixfxError, match="logmel"):
        FXEncoderConfig(frontend="logmel", hop=0)
