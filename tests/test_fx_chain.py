"""The FXmanipulator: seeding, sampled configurations, factors, single-FX mode, backends."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import noise
from mixfx.errors import MixfxError
from mixfx.fx import functional as F
from mixfx.fx.chain import FXManipulator
from mixfx.fx.effects import EFFECTS
from mixfx.fx.params import FX_NAMES, FXProbabilities
from mixfx.fx.signal import match_rms

ALL_ON = FXProbabilities(1.0, 1.0, 1.0, 1.0, 1.0, {k: 1.0 for k in ("drums", "bass", "other", "vocals", "mixture")})
STEMS4 = ["drums", "bass", "other", "vocals"]


@pytest.fixture(scope="module")
def chain() -> FXManipulator:
    return FXManipulator()


def test_same_seed_gives_bit_identical_output(chain):
    x = noise(4, 1.0, seed=0)
    stems = ["drums", "bass", "other", "vocals"]
    y1, c1 = chain(x, generator=torch.Generator().manual_seed(42), stems=stems)
    y2, c2 = chain(x, generator=torch.Generator().manual_seed(42), stems=stems)
    assert torch.equal(y1, y2)
    assert torch.equal(c1.factor_matrix(), c2.factor_matrix())
    y3, _ = chain(x, generator=torch.Generator().manual_seed(43), stems=stems)
    assert not torch.equal(y1, y3)


def test_same_configuration_applies_to_other_content(chain):
    a, b = noise(3, 1.0, seed=1), noise(3, 1.0, seed=2)
    cfg = chain.sample(3, generator=torch.Generator().manual_seed(0), stems="vocals", probabilities=ALL_ON)
    ya, yb = chain.apply(a, cfg), chain.apply(b, cfg)
    assert not torch.allclose(ya, yb)
    # same FX on other content: the loudness gain (the only level change) is identical
    ratio_a = ya.square().mean(dim=(1, 2)) / a.square().mean(dim=(1, 2))
    ratio_b = yb.square().mean(dim=(1, 2)) / b.square().mean(dim=(1, 2))
    assert torch.allclose(ratio_a, ratio_b, rtol=0.05)
    # the sub-configuration of one example gives that example's output
    y0 = chain.apply(a[1:2], cfg.select([1]))
    assert torch.allclose(y0, ya[1:2], atol=1e-4 * float(ya.abs().max()))


def test_probabilities_control_application(chain):
    n = 400
    cfg = chain.sample(n, generator=torch.Generator().manual_seed(1), stems="vocals")
    rates = {fx: float(cfg.applied[fx].float().mean()) for fx in FX_NAMES}
    expected = {"eq": 0.9, "compressor": 0.9, "pan": 0.3, "imager": 0.8, "reverb": 0.9, "gain": 0.5}
    for fx, p in expected.items():
        assert abs(rates[fx] - p) < 0.08, (fx, rates[fx])
    bass = chain.sample(n, generator=torch.Generator().manual_seed(1), stems="bass")
    assert float(bass.applied["reverb"].float().mean()) < 0.05


def test_parameters_drawn_within_official_ranges(chain):
    cfg = chain.sample(500, generator=torch.Generator().manual_seed(2), stems="other")
    for spec in cfg.specs:
        v = cfg.values[spec.key].float()
        assert float(v.min()) >= spec.low - 1e-6 and float(v.max()) <= spec.high + 1e-6, spec.key
    thr = cfg.values["compressor.threshold_db"]
    assert float(thr.min()) < -70 and float(thr.max()) > -15  # spans the official −80…−5 dB
    assert set(cfg.values["pan.law"].tolist()) == {0, 1, 2}


@pytest.mark.parametrize("fx", FX_NAMES)
def test_single_fx_applies_exactly_one_effect(chain, fx):
    x = noise(3, 1.0, seed=3)
    y, cfg = chain(x, generator=torch.Generator().manual_seed(4), stems="drums", single_fx=fx)
    assert all(bool(cfg.applied[f].all()) == (f == fx) and bool(cfg.applied[f].any()) == (f == fx) for f in FX_NAMES)
    assert cfg.single_fx == fx
    # the output is that effect alone: its function on x (renormalised, except the reverb and the gain),
    # the reverb fully wet and without the drums routing although the stems are drums
    if fx == "reverb":
        assert torch.all(cfg.values["reverb.dry_weight"] == 0)
        ir = chain.ir_bank.irs[cfg.values["reverb.ir_index"]]
        alone = F.convolution_reverb(x, chain.sample_rate, ir=ir, dry_weight=0.0)
    else:
        alone = EFFECTS[fx].process(x, chain.sample_rate, cfg.values, irs=chain.ir_bank.irs)
        alone = alone if fx == "gain" else match_rms(alone, x)
    assert not torch.allclose(alone, x, atol=1e-3 * float(x.abs().max()))
    assert torch.allclose(y, alone, atol=1e-4 * float(alone.abs().max()))
    # the other effects' parameters and the random orders have no influence on the output
    other = chain.sample(3, generator=torch.Generator().manual_seed(99), stems="drums")
    mixed = dataclasses.replace(
        cfg, values={k: v if k.startswith(f"{fx}.") else other.values[k] for k, v in cfg.values.items()})
    assert any(not torch.equal(mixed.values[k], cfg.values[k]) for k in cfg.values if not k.startswith(f"{fx}."))
    assert torch.equal(chain.apply(x, mixed), y)
    swapped = dataclasses.replace(mixed, eq_first=~cfg.eq_first, pan_first=~cfg.pan_first)
    assert torch.allclose(chain.apply(x, swapped), y, atol=1e-6 * float(y.abs().max()))


def test_factor_matrix_and_table(chain):
    cfg = chain.sample(8, generator=torch.Generator().manual_seed(5), stems="mixture")
    f = cfg.factor_matrix()
    names = cfg.factor_names()
    assert f.shape == (8, len(names)) and len(set(names)) == len(names)
    assert float(f.min()) >= 0 and float(f.max()) <= 1
    # an effect that was off takes its neutral value: imager width 1.0 -> 0.5 normalised
    off = ~cfg.applied["imager"]
    col = names.index("imager.width")
    assert torch.all(f[off, col] == 0.5)
    table = cfg.table()
    assert {"example", "effect", "parameter", "value", "applied"} <= set(table.columns)
    row = table[(table.example == 0) & (table.parameter == "gain_db")].iloc[0]
    assert row.value == pytest.approx(float(cfg.values["gain.gain_db"][0]))
    assert bool(row.applied) == bool(cfg.applied["gain"][0])


def test_level_renormalisation_keeps_rms_except_gain(chain):
    x = noise(4, 1.0, seed=6)
    probs = FXProbabilities(1.0, 1.0, 1.0, 1.0, 0.0, {k: 0.0 for k in ("drums", "bass", "other", "vocals", "mixture")})
    y, _ = chain(x, generator=torch.Generator().manual_seed(7), stems="vocals", probabilities=probs)
    assert torch.allclose(y.square().mean(dim=(1, 2)), x.square().mean(dim=(1, 2)), rtol=1e-3)


def test_accelerated_formulations_match_cpu_kernels(chain):
    """The CUDA path (FFT EQ, scan ballistics) equals the CPU kernels within 1e-4 relative, here on CPU."""
    x = noise(4, 1.0, seed=8)
    cfg = chain.sample(4, generator=torch.Generator().manual_seed(9), stems=["drums", "bass", "other", "vocals"], probabilities=ALL_ON)
    cpu = chain.apply(x, cfg)
    accel = FXManipulator(backend="torch", ir_bank=chain.ir_bank).apply(x, cfg)
    assert torch.allclose(accel, cpu, atol=1e-4 * float(cpu.abs().max()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("probs", [ALL_ON, None], ids=["all_on", "official"])
def test_cuda_matches_cpu(chain, probs):
    x = noise(8, 2.0, seed=10)
    cfg = chain.sample(8, generator=torch.Generator().manual_seed(11), stems=STEMS4 * 2, probabilities=probs)
    cpu = reference_apply(chain, x, cfg)
    gpu = chain.apply(x.cuda(), cfg).cpu()
    assert torch.allclose(gpu, cpu, atol=1e-4 * float(cpu.abs().max()))


def test_bad_input_is_reported(chain):
    cfg = chain.sample(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(MixfxError, match="batch"):
        chain.apply(noise(3, 0.1), cfg)
    with pytest.raises(MixfxError, match="stereo"):
        chain.apply(torch.zeros(2, 1, 100), cfg)
    with pytest.raises(MixfxError, match="unknown stem"):
        chain.sample(1, generator=torch.Generator(), stems="guitar")
    with pytest.raises(MixfxError, match="single_fx"):
        chain.sample(1, generator=torch.Generator(), single_fx="chorus")


def test_silent_input_stays_silent(chain):
    y, _ = chain(torch.zeros(2, 2, 4410), generator=torch.Generator().manual_seed(0), probabilities=ALL_ON)
    assert torch.isfinite(y).all() and float(y.abs().max()) == 0.0


def reference_apply(chain: FXManipulator, x: torch.Tensor, config, backend: str = "auto") -> torch.Tensor:
    """The chain written as the plain composition of the textbook effects (one effect at a time,
    gather → the effect's table ``process`` → match_rms → scatter), independent of the fused in-place stages."""
    on, val, sr = config.applied, config.values, chain.sample_rate
    drums = torch.tensor([s == "drums" for s in config.stems]) & (config.single_fx is None)
    context = dict(backend=backend, irs=chain.ir_bank.irs, shelf_q=chain.ranges.shelf_q)

    def where(x, mask, fx, renormalize=True):
        idx = torch.nonzero(mask).flatten()
        if idx.numel() == 0:
            return x
        sub = x.index_select(0, idx)
        y = EFFECTS[fx].process(sub, sr, {k: v.index_select(0, idx) for k, v in val.items()}, drums=drums[idx],
                                **context)
        return x.index_copy(0, idx, match_rms(y, sub) if renormalize else y)

    x = where(x, on["eq"] & config.eq_first, "eq")
    x = where(x, on["compressor"], "compressor")
    x = where(x, on["eq"] & ~config.eq_first, "eq")
    x = where(x, on["pan"] & config.pan_first, "pan")
    x = where(x, on["imager"], "imager")
    x = where(x, on["pan"] & ~config.pan_first, "pan")
    x = where(x, on["reverb"], "reverb", renormalize=False)
    return where(x, on["gain"], "gain", renormalize=False)


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("case", ["all_on", "official", "single_reverb", "mono", "near_mono", "quiet"])
def test_fused_chain_equals_the_composition_of_the_effects(chain, backend, case):
    """The in-place fused stages (numba on CPU; the torch path that CUDA falls back to with
    ``torch``) give the textbook composition of the effects, to 1e-4 of full scale."""
    x = noise(8, 1.0, seed=12)
    if case == "quiet":  # examples down to -100 dBFS: the renormalisation's power floor (1e-7) matters
        x = x * torch.logspace(0, -4, 8).view(-1, 1, 1)
    if case in ("mono", "near_mono"):  # no side, or a side 26 dB under the mid: the imager's side gain is large
        # (closer to mono the effect itself is ill-conditioned: it amplifies the side's float32 rounding)
        x[:, 1] = x[:, 0] * (1.1 if case == "near_mono" else 1.0)
    probs = None if case == "official" else ALL_ON
    single = "reverb" if case == "single_reverb" else None
    cfg = chain.sample(8, generator=torch.Generator().manual_seed(13), stems=STEMS4 * 2, probabilities=probs,
                       single_fx=single)
    if case in ("mono", "near_mono"):
        cfg.values["imager.width"][:] = torch.linspace(1.2, 1.9, 8)  # at 2.0 the mid gain is sqrt(0 ± rounding)
    ref = reference_apply(chain, x, cfg, backend=backend)
    got = FXManipulator(backend=backend, ir_bank=chain.ir_bank).apply(x, cfg)
    assert not torch.equal(got, x)
    # relative to each example's own peak: a quiet example must be right too
    err = (got - ref).abs().amax(dim=(1, 2)) / ref.abs().amax(dim=(1, 2)).clamp_min(1e-30)
    assert float(err.max()) < 1e-4, err


def test_backend_names_old_and_new(chain):
    """One Backend enum; the older names keep their meaning: loop = numba, fft = scan = torch."""
    from mixfx.fx.kernels import Backend, have_numba, parse_backend, resolve

    assert [parse_backend(n) for n in ("auto", "numba", "triton", "torch")] == list(Backend)
    assert parse_backend("loop") is Backend.NUMBA
    assert parse_backend("fft") is parse_backend("scan") is Backend.TORCH
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        parse_backend("gpu")
    x = noise(2, 0.2, seed=14)
    assert resolve(x, "auto") is (Backend.NUMBA if have_numba() else Backend.TORCH)
    assert resolve(x, "scan") is Backend.TORCH
    cfg = chain.sample(2, generator=torch.Generator().manual_seed(15), probabilities=ALL_ON)
    torch_out = FXManipulator(backend=Backend.TORCH, ir_bank=chain.ir_bank).apply(x, cfg)
    assert torch.equal(FXManipulator(backend="scan", ir_bank=chain.ir_bank).apply(x, cfg), torch_out)
    if have_numba():
        assert torch.equal(FXManipulator(backend="loop", ir_bank=chain.ir_bank).apply(x, cfg), chain.apply(x, cfg))
