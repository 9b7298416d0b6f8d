"""Tiled layer-by-layer cloner inference (issue 12): equals one full pass, computes nothing twice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mixfx.errors import MixfxError
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.style_transfer import StyleTransfer
from mixfx.models.tcn_inference import (cloner_forward_tiled, loud_pieces, silent_output_mask, store_length,
                                        tile_for_memory, tiled_memory_bytes)


def _random_cloner(config: ClonerConfig, seed: int) -> MixFXCloner:
    """Random weights and BatchNorm statistics (non-zero means, so BN bias terms matter)."""
    torch.manual_seed(seed)
    model = MixFXCloner(config)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            m.weight.data.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


TINY = _random_cloner(ClonerConfig.tiny(cond_dim=8), 0)  # receptive field 211
MODERATE = _random_cloner(ClonerConfig(n_blocks=9, kernel_size=5, channels=32, cond_dim=16), 3)  # RF 2045


def _data(cloner, batch, length, seed):
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(batch, cloner.config.in_channels, length, generator=g)
    return x, torch.randn(batch, cloner.config.cond_dim, generator=g)


@pytest.mark.parametrize("length", [1, 50, 211, 777, 2003])
@pytest.mark.parametrize("tile", [1, 7, 64, 211, 500, 5000])
def test_tiny_cloner_equals_one_full_pass(length, tile):
    x, e = _data(TINY, 3, length, length + tile)
    with torch.no_grad():
        full = TINY(x, e)
    for conv in ("auto", "taps", "conv1d"):
        y = cloner_forward_tiled(TINY, x, e, tile=tile, conv=conv)
        assert y.shape == full.shape and y.dtype == torch.float32
        assert torch.allclose(y, full, atol=1e-5), (length, tile, conv, (y - full).abs().max())


def _phases_from(monkeypatch, dilation: int, step: int) -> None:
    """Run the phase-split conv from ``dilation`` on with phase dilation ``step`` (paper-size
    thresholds would never reach the small test cloners' dilations)."""
    from mixfx.models import tcn_inference

    monkeypatch.setattr(tcn_inference, "PHASE_FROM", dilation)
    monkeypatch.setattr(tcn_inference, "PHASE_DILATION", step)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")  # whatever this CPU is:
    monkeypatch.setattr(tcn_inference, "cpu_vendor", lambda: "AuthenticAMD")  # the CPUs where "auto" splits


@pytest.mark.parametrize("tile", [97, 1000, 2045, 4096])
@pytest.mark.parametrize("conv", ["auto", "auto, phases from d = 4", "conv1d", "taps"])
def test_moderate_cloner_equals_one_full_pass(tile, conv, monkeypatch):
    if conv.startswith("auto, phases"):
        _phases_from(monkeypatch, 4, 2)
        conv = "auto"
    assert MODERATE.receptive_field() == 2045
    x, e = _data(MODERATE, 2, 5001, tile)
    with torch.no_grad():
        full = MODERATE(x, e)
        per_block = [torch.randn(1, 16, generator=torch.Generator().manual_seed(k)) for k in range(9)]
        full_blocks = MODERATE(x, per_block)
    assert torch.allclose(cloner_forward_tiled(MODERATE, x, e, tile=tile, conv=conv), full, atol=1e-5)
    # one condition per block, broadcast over the batch
    assert torch.allclose(cloner_forward_tiled(MODERATE, x, per_block, tile=tile, conv=conv), full_blocks, atol=1e-5)


def test_per_tap_conv_equals_conv1d_at_any_dilation():
    """The per-tap GEMM kernel against ``F.conv1d`` on one buffer, with a strided ``out`` (a view
    into a longer store, as the tiled pass writes the next block's input)."""
    from mixfx.models.tcn_inference import _conv_by_taps

    g = torch.Generator().manual_seed(3)
    w, bias = torch.randn(6, 4, 5, generator=g), torch.randn(6, generator=g)
    for d in (1, 3, 64):
        count = 37
        x = torch.randn(2, 4, count + 4 * d + 9, generator=g)[:, :, 5:-4]  # a view with row stride > its length
        store = torch.zeros(2, 6, 100)
        y = _conv_by_taps(x, w.permute(2, 0, 1).contiguous(), bias, d, count, out=store[:, :, 10:10 + count])
        ref = F.conv1d(x, w, bias, dilation=d)
        assert y.data_ptr() == store[:, :, 10:].data_ptr()
        assert torch.allclose(store[:, :, 10:10 + count], ref, atol=1e-5) and not store[:, :, :10].any()


def test_phase_split_conv_equals_conv1d():
    """The phase-split conv against ``F.conv1d``: any phase count, output lengths that are and are not
    multiples of it, an input view with row stride > its length, a strided ``out`` into a store."""
    from mixfx.models.tcn_inference import _conv_by_phases

    g = torch.Generator().manual_seed(4)
    w, bias = torch.randn(6, 4, 5, generator=g), torch.randn(6, generator=g)
    for d, step, count in ((2, 1, 37), (8, 2, 40), (8, 2, 1), (64, 4, 333), (96, 32, 50), (1024, 64, 7)):
        x = torch.randn(2, 4, count + 4 * d + 9, generator=g)[:, :, 5:-4]
        store = torch.zeros(2, 6, count + 20)
        y = _conv_by_phases(x, w, bias, d, count, out=store[:, :, 10:10 + count], step=step)
        ref = F.conv1d(x, w, bias, dilation=d)
        assert y.data_ptr() == store[:, :, 10:].data_ptr()
        assert torch.allclose(store[:, :, 10:10 + count], ref, atol=1e-5), (d, step, count)
        assert not store[:, :, :10].any() and not store[:, :, 10 + count:].any()
    with pytest.raises(ValueError, match="does not divide"):
        _conv_by_phases(x, w, bias, 96, 5, step=64)


def test_causal_cloner_equals_one_full_pass():
    cl = _random_cloner(ClonerConfig(n_blocks=5, kernel_size=3, channels=8, cond_dim=4, causal=True), 7)
    x, e = _data(cl, 2, 301, 1)
    with torch.no_grad():
        full = cl(x, e)
    for tile in (1, 10, 301):
        assert torch.allclose(cloner_forward_tiled(cl, x, e, tile=tile), full, atol=1e-5)


def _count_dilated_convs(monkeypatch, counts: dict[int, int], first_block_only: int | None = None) -> None:
    """Add every dilated conv's output samples to ``counts[dilation]``, through either kernel
    (``F.conv1d`` or the per-tap GEMMs); only convs with ``first_block_only`` input channels if given."""
    from mixfx.models import tcn_inference

    conv1d, taps, phases = F.conv1d, tcn_inference._conv_by_taps, tcn_inference._conv_by_phases
    inside_phases = []

    def add(d, channels, samples):
        if first_block_only is None or channels == first_block_only:
            counts[d] = counts.get(d, 0) + samples

    def counting(inp, weight, *args, **kwargs):
        y = conv1d(inp, weight, *args, **kwargs)
        if weight.shape[-1] > 1 and not inside_phases:  # a dilated conv (key by dilation)
            d = kwargs.get("dilation", 1)
            add(d[0] if isinstance(d, tuple) else d, inp.shape[1], y.shape[-1])
        return y

    def counting_taps(inp, weights, bias, dilation, count, out=None):
        add(dilation, inp.shape[1], count)
        return taps(inp, weights, bias, dilation, count, out=out)

    def counting_phases(inp, weight, bias, dilation, count, out=None, step=0):
        add(dilation, inp.shape[1], count)
        inside_phases.append(True)  # its inner conv1d over the phases is this conv, not another one
        try:
            return phases(inp, weight, bias, dilation, count, out=out, step=step)
        finally:
            inside_phases.pop()

    monkeypatch.setattr(F, "conv1d", counting)
    monkeypatch.setattr(tcn_inference, "_conv_by_taps", counting_taps)
    monkeypatch.setattr(tcn_inference, "_conv_by_phases", counting_phases)


def test_every_conv_output_sample_is_computed_once(monkeypatch):
    """Count the output samples of every dilated conv: exactly T each, whatever the tile and kernel."""
    counts: dict[int, int] = {}
    _count_dilated_convs(monkeypatch, counts)
    x, e = _data(MODERATE, 2, 3000, 0)
    dilations = [b.conv1.dilation[0] for b in MODERATE.blocks]
    assert len(set(dilations)) == len(dilations)
    _phases_from(monkeypatch, 8, 4)  # "auto" runs dilations 8 … 256 as phase-split convs
    for tile, fused, conv in ((100, True, "taps"), (700, True, "taps"), (700, True, "conv1d"), (100, True, "auto"),
                              (700, True, "auto"), (700, False, "auto")):
        counts.clear()
        cloner_forward_tiled(MODERATE, x, e, tile=tile, fused=fused, conv=conv)
        assert [counts[d] for d in dilations] == [3000] * len(MODERATE.blocks), (tile, fused, conv)


def test_memory_budget_sets_the_tile_and_progress():
    halo_bytes = 4 * sum(b.conv1.in_channels * sum(b.pad) for b in MODERATE.blocks)
    assert tiled_memory_bytes(MODERATE, 1, 0) == 2 * halo_bytes  # each store holds two halos
    stores = sum(b.conv1.in_channels * store_length(b.pad, 500) for b in MODERATE.blocks)
    assert tiled_memory_bytes(MODERATE, 3, 500) == 3 * 4 * (stores + 5 * 32 * 500)
    for budget in (2 * 10**6, 10**7):
        tile = tile_for_memory(MODERATE, 2, budget)
        assert tiled_memory_bytes(MODERATE, 2, tile) <= budget < tiled_memory_bytes(MODERATE, 2, tile + 1)
    x, e = _data(MODERATE, 2, 4000, 2)
    calls = []
    y = cloner_forward_tiled(MODERATE, x, e, max_memory=2 * 10**6, progress=lambda *call: calls.append(call))
    with torch.no_grad():
        assert torch.allclose(y, MODERATE(x, e), atol=1e-5)
    assert calls[-1] == (4000, 4000, "samples") and len(calls) > 1


def test_bad_inputs_raise_one_line_errors():
    x, e = _data(TINY, 2, 100, 0)
    with pytest.raises(MixfxError, match="max_memory 1000 bytes is below"):
        cloner_forward_tiled(TINY, x, e, max_memory=1000)
    with pytest.raises(MixfxError, match="tile must be"):
        cloner_forward_tiled(TINY, x, e, tile=0)
    with pytest.raises(MixfxError, match="conv must be one of auto, conv1d, taps, got 'gemm'"):
        cloner_forward_tiled(TINY, x, e, conv="gemm")
    with pytest.raises(MixfxError, match="expected audio"):
        cloner_forward_tiled(TINY, x[:, :1], e)
    with pytest.raises(MixfxError, match="condition"):
        cloner_forward_tiled(TINY, x, e[:, :3])
    TINY.train()
    try:
        with pytest.raises(MixfxError, match="training mode"):
            cloner_forward_tiled(TINY, x, e)
    finally:
        TINY.eval()


def test_style_transfer_uses_the_tiled_pass_by_default():
    x, e = _data(MODERATE, 3, 6000, 4)
    x[1] = 0.0  # a silent row stays silent
    with torch.no_grad():
        full = MODERATE(x, e)
    st = StyleTransfer(None, MODERATE, segment=1000, max_memory=2 * 10**6, batch_size=2)
    y = st.convert(x, e)
    assert torch.allclose(y[[0, 2]], full[[0, 2]], atol=1e-5) and not torch.any(y[1])
    with pytest.raises(MixfxError, match="max_memory"):
        StyleTransfer(None, MODERATE, max_memory=0)


def test_style_transfer_splits_rows_when_the_budget_is_tight():
    x, e = _data(MODERATE, 4, 3000, 5)
    with torch.no_grad():
        full = MODERATE(x, e)
    one_row = tiled_memory_bytes(MODERATE, 1, 3000)
    st = StyleTransfer(None, MODERATE, batch_size=4, max_memory=one_row)  # fits one row, not four
    assert st._rows_and_tile(4, 3000) == (1, 3000)
    calls = []
    y = st.convert(x, e, progress=lambda *call: calls.append(call))
    assert torch.allclose(y, full, atol=1e-5)
    assert calls[-1] == (12000, 12000, "samples") and all(a <= b for (a, _, _), (b, _, _) in zip(calls, calls[1:]))


def test_quiet_spans_longer_than_the_receptive_field_give_exact_silence():
    left = sum(b.pad[0] for b in TINY.blocks)
    right = sum(b.pad[1] for b in TINY.blocks)
    g = torch.Generator().manual_seed(9)
    x = 0.3 * torch.randn(2, 2, 3000, generator=g)
    x[0, :, 1000:2000] = 1e-4 * torch.randn(2, 1000, generator=g)  # −80 dBFS noise: long quiet span
    x[1, :, 1000:1150] = 0.0  # shorter than the receptive field (211): converted as Ψ computes it
    x[1, :, 2800:] = 0.0  # quiet tail: only its last samples see nothing but quiet input and padding
    e = torch.randn(2, 8, generator=g)
    with torch.no_grad():
        full = TINY(x, e)
        assert TINY(torch.zeros(1, 2, 500), e[:1]).abs().amin() > 0  # Ψ does not map silence to silence
    y = StyleTransfer(None, TINY).convert(x, e)
    zero = torch.zeros(2, 3000, dtype=torch.bool)
    zero[0, 1000 + left:2000 - right] = True
    zero[1, 2800 + left:] = True
    assert torch.equal(y.abs().amax(dim=1) == 0, zero)
    assert torch.allclose(y[0][:, ~zero[0]], full[0][:, ~zero[0]], atol=1e-5)
    assert torch.allclose(y[1][:, ~zero[1]], full[1][:, ~zero[1]], atol=1e-5)
    # independent check of the mask: brute force over every output sample
    quiet = x.abs().amax(dim=1) <= 1e-3
    brute = torch.tensor([[bool(quiet[k, max(0, t - left):t + right + 1].all()) for t in range(3000)] for k in range(2)])
    assert torch.equal(silent_output_mask(x, left, right, 1e-3), brute)
    assert torch.allclose(StyleTransfer(None, TINY, silence_db=None).convert(x, e), full, atol=1e-5)


def test_quiet_spans_are_not_run_through_the_cloner(monkeypatch):
    """A row with a long quiet span: only the two loud pieces (each with its reach) are computed."""
    left = sum(b.pad[0] for b in TINY.blocks)
    right = sum(b.pad[1] for b in TINY.blocks)
    g = torch.Generator().manual_seed(11)
    x = 0.3 * torch.randn(1, 2, 4000, generator=g)
    x[0, :, 1000:3000] = 0.0
    e = torch.randn(1, 8, generator=g)
    assert loud_pieces(silent_output_mask(x, left, right, 1e-3)[0], left, right) == [
        (0, 0, 1000 + left, 1000 + left + right), (3000 - right - left, 3000 - right, 4000, 4000)]
    with torch.no_grad():
        full = TINY(x, e)
    counts: dict[int, int] = {}
    _count_dilated_convs(monkeypatch, counts, first_block_only=TINY.config.in_channels)  # block 0's conv
    y = StyleTransfer(None, TINY).convert(x, e)
    assert sum(counts.values()) == 2 * (1000 + left + right)  # not 4000: the quiet middle is skipped
    keep = torch.ones(4000, dtype=torch.bool)
    keep[1000 + left:3000 - right] = False
    assert torch.allclose(y[0][:, keep], full[0][:, keep], atol=1e-5) and not torch.any(y[0][:, ~keep])
    # touching pieces are merged: a quiet gap just over the receptive field is computed once, not twice
    assert loud_pieces(torch.tensor([False] * 5 + [True] * 3 + [False] * 5), 2, 2) == [(0, 0, 13, 13)]


def test_input_skip_cloner_starts_as_the_identity_and_tiles_exactly():
    """``input_skip``: an untrained Ψ returns its input (clamped to [−1, 1]); once its output conv is
    non-zero the tiled pass still equals the module's full pass."""
    import dataclasses

    config = dataclasses.replace(ClonerConfig.tiny(cond_dim=8), input_skip=True)
    untrained = MixFXCloner(config).eval()
    x, e = _data(untrained, 2, 900, 5)
    x[0, 0, :10] = 1.7  # beyond full scale: the clamp still applies
    with torch.no_grad():
        assert torch.equal(untrained(x, e), x.clamp(-1.0, 1.0))
    trained = _random_cloner(config, 7)
    torch.nn.init.normal_(trained.output.weight, std=0.3)
    with torch.no_grad():
        full = trained(x, e)
        plain = trained.output(_blocks_only(trained, x, e))
    assert not torch.allclose(full, x.clamp(-1, 1), atol=1e-3)
    assert torch.allclose(full, (plain + x).clamp(-1.0, 1.0), atol=1e-6)  # y = clamp(x + output(h))
    for tile in (1, 64, 211, 5000):
        assert torch.allclose(cloner_forward_tiled(trained, x, e, tile=tile), full, atol=1e-5), tile
    with pytest.raises(MixfxError, match="input_skip"):
        ClonerConfig(in_channels=2, out_channels=1, input_skip=True)


def _blocks_only(cloner, x, e):
    h = x
    for block in cloner.blocks:
        h = block(h, e)
    return h


@pytest.mark.parametrize("vendor, capability, channels, expected", [
    ("AuthenticAMD", "AVX512", 32, "phases"), ("AuthenticAMD", "AVX2", 32, "conv1d"), ("AuthenticAMD", "DEFAULT", 32, "conv1d"),
    ("GenuineIntel", "AVX512", 32, "taps"), ("GenuineIntel", "AVX512", 31, "conv1d"), ("GenuineIntel", "AVX2", 32, "conv1d"),
    ("unknown", "AVX512", 32, "phases")])
def test_auto_picks_the_kernel_measured_for_the_cpu(vendor, capability, channels, expected, monkeypatch):
    """``conv="auto"`` takes per-tap GEMMs on wide cloners on Intel AVX-512 CPUs, the phase split on other
    AVX-512 CPUs and the plain conv1d elsewhere (where each was measured to pay); the values are the same
    whichever it takes. The CPU facts are forced, so every rule runs on any machine."""
    from mixfx.models import tcn_inference

    calls = []

    def recording(name, fn):
        def wrapped(*args, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(tcn_inference, "PHASE_FROM", 8)
    monkeypatch.setattr(tcn_inference, "PHASE_DILATION", 4)
    monkeypatch.setattr(tcn_inference, "TAPS_FROM_CHANNELS", 32)  # MODERATE's width (the rule's threshold is 64)
    monkeypatch.setattr(tcn_inference, "_conv_by_phases", recording("phases", tcn_inference._conv_by_phases))
    monkeypatch.setattr(tcn_inference, "_conv_by_taps", recording("taps", tcn_inference._conv_by_taps))
    monkeypatch.setattr(tcn_inference, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert tcn_inference.auto_kernel(torch.device("cpu"), channels) == expected
    assert tcn_inference.auto_kernel(torch.device("cuda"), 128) == "conv1d"
    if channels != MODERATE.config.channels:
        return
    x, e = _data(MODERATE, 1, 1500, 0)
    with torch.no_grad():
        full = MODERATE(x, e)
    y = cloner_forward_tiled(MODERATE, x, e, tile=400, conv="auto")
    assert set(calls) == ({expected} if expected != "conv1d" else set())
    assert torch.allclose(y, full, atol=1e-5)
