"""Windowed overlap-add inference and segment-averaged embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mixfx.errors import MixfxError
from mixfx.models.apply import apply_in_windows, embed_in_segments, window_offsets
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

WINDOW = 256


@pytest.mark.parametrize("length", [1, 100, WINDOW - 1, WINDOW, WINDOW + 1, 3 * WINDOW, 192 * 5, 1000, 1234])
def test_pointwise_functions_are_reproduced_exactly_for_any_length(length):
    x = torch.randn(2, 3, length, generator=torch.Generator().manual_seed(length), dtype=torch.float64)
    for fn in (lambda c: c, lambda c: torch.tanh(3 * c) - 0.5 * c):
        for shape in ((2, 3, length), (3, length)):
            xi = x.reshape(shape) if len(shape) == 3 else x[0]
            y = apply_in_windows(fn, xi, window=WINDOW, overlap=0.25, batch_size=3)
            assert y.shape == xi.shape
            assert torch.allclose(y, fn(xi), atol=1e-12)


def test_windows_cover_the_signal_without_reading_past_the_end():
    for length in (1, 255, 256, 257, 1000, 1024):
        offs = window_offsets(length, WINDOW, 192)
        covered = torch.zeros(length, dtype=torch.bool)
        for o in offs:
            assert 0 <= o and o + min(WINDOW, length) <= length
            covered[o:o + WINDOW] = True
        assert covered.all() and offs == sorted(set(offs))


def _smooth(c: torch.Tensor) -> torch.Tensor:
    """A position-independent FIR (31-tap moving average per channel), zero-padded at the chunk edges."""
    k = torch.full((c.shape[1], 1, 31), 1 / 31, dtype=c.dtype)
    return F.conv1d(c, k, padding=15, groups=c.shape[1])


def test_position_independent_filter_matches_the_unwindowed_result():
    g = torch.Generator().manual_seed(0)
    x = torch.cumsum(torch.randn(2, 5000, generator=g, dtype=torch.float64), dim=-1) * 0.01  # smooth-ish signal
    full = _smooth(x[None])[0]
    y = apply_in_windows(_smooth, x, window=1024, overlap=0.5, batch_size=2)
    hard = apply_in_windows(_smooth, x, window=1024, overlap=0.0)  # no cross-fade: edge errors at every join
    err, hard_err = (y - full).abs().max(), (hard - full).abs().max()
    # the residual error sits at the window edges, damped by the small triangular weights there
    assert err < 0.05 * hard_err and err < 1e-2 * full.abs().max()
    # squaring the weights (Demucs' transition_power) damps the edges much more
    y2 = apply_in_windows(_smooth, x, window=1024, overlap=0.5, transition_power=2.0)
    assert (y2 - full).abs().max() < 0.05 * err


def test_no_clicks_at_joins_even_for_a_chunk_dependent_function():
    # worst case: every chunk gets its own gain, so joining chunks without a cross-fade would click
    x = torch.sin(torch.linspace(0, 200, 6000, dtype=torch.float64)).expand(2, -1).clone()
    gains = iter(torch.linspace(0.5, 1.5, 100, dtype=torch.float64))

    def fn(c):
        return torch.stack([next(gains) * row for row in c])

    y = apply_in_windows(fn, x, window=1000, overlap=0.25)
    ratio = y / torch.where(x.abs() > 1e-3, x, torch.ones_like(x))
    ratio = ratio[:, x[0].abs() > 0.2]
    # the gain moves smoothly: the largest step between neighbouring kept samples stays tiny compared
    # with the gain difference between neighbouring chunks (≈ 0.01)
    assert ratio.diff(dim=-1).abs().max() < 2e-3
    # and the output is as continuous as the input itself
    assert y.diff(dim=-1).abs().max() <= 1.6 * x.diff(dim=-1).abs().max()


def test_index_batch_size_progress_and_device():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 999, generator=g)
    gain = torch.tensor([1.0, -2.0, 0.5])
    calls = []
    y = apply_in_windows(lambda c, i: c * gain[i][:, None, None], x, window=200, overlap=0.3, batch_size=4,
                         with_index=True, device="cpu", progress=lambda *call: calls.append(call))
    assert torch.allclose(y, x * gain[:, None, None], atol=1e-6)
    # window offsets 0, 140, …, 700 and 799 (hop 140, the last ends at sample 999) × 3 rows = 21 windows, 4 per call
    assert calls == [(done, 21, "windows") for done in (4, 8, 12, 16, 20, 21)]
    y1 = apply_in_windows(_smooth, x, window=200, overlap=0.3, batch_size=1)
    y7 = apply_in_windows(_smooth, x, window=200, overlap=0.3, batch_size=7)
    assert torch.allclose(y1, y7, atol=1e-6)
    # output channels may differ from input channels
    assert apply_in_windows(lambda c: c.mean(1, keepdim=True), x, window=200).shape == (3, 1, 999)


def test_apply_errors():
    x = torch.zeros(2, 500)
    with pytest.raises(MixfxError, match="overlap"):
        apply_in_windows(lambda c: c, x, window=100, overlap=1.0)
    with pytest.raises(MixfxError, match="fn must return"):
        apply_in_windows(lambda c: c[..., :-1], x, window=100)
    with pytest.raises(MixfxError, match="expected audio"):
        apply_in_windows(lambda c: c, torch.zeros(500), window=100)


class _MeanAbs(torch.nn.Module):
    """Stand-in encoder whose embedding is the per-channel mean |x| (an average over time)."""

    def forward(self, x):
        return x.abs().mean(dim=-1)


def test_embed_in_segments_weights_pieces_by_new_samples():
    enc = _MeanAbs()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 1000, generator=g, dtype=torch.float64)
    # shorter than a segment: one pass
    assert torch.allclose(embed_in_segments(enc, x[:, :300], 400), enc(x[None, :, :300])[0])
    # exact multiple: plain mean of the pieces = mean over the whole signal for this encoder
    assert torch.allclose(embed_in_segments(enc, x[:, :800], 400), enc(x[None, :, :800])[0])
    # remainder: pieces [0,400), [400,800) with weight 1, [600,1000) with weight 200/400
    pieces = [enc(x[None, :, a:a + 400])[0] for a in (0, 400, 600)]
    ref = (pieces[0] + pieces[1] + 0.5 * pieces[2]) / 2.5
    got = embed_in_segments(enc, x, 400, batch_size=2)
    assert torch.allclose(got, ref)
    # no zero-padding bias: a constant signal gives the constant's embedding whatever the length
    c = torch.full((2, 1001), 0.3, dtype=torch.float64)
    assert torch.allclose(embed_in_segments(enc, c, 400), torch.full((2,), 0.3, dtype=torch.float64))


def test_embed_in_segments_with_a_real_encoder_batches():
    enc = FXEncoder(FXEncoderConfig.tiny()).eval()
    x = torch.randn(3, 2, 2500, generator=torch.Generator().manual_seed(3))
    z = embed_in_segments(enc, x, 1024, batch_size=4)
    assert z.shape == (3, 64) and not z.requires_grad
    for i in range(3):
        assert torch.allclose(embed_in_segments(enc, x[i], 1024), z[i], atol=1e-5)
