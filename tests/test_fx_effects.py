"""Each effect against its definition on synthetic signals (issue 2's unit tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from conftest import noise
from mixfx.fx import functional as F
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import measure_rt60, synthetic_ir
from mixfx.fx.loudness import integrated_loudness
from mixfx.fx.signal import biquad_coefficients

SR = 44100


@pytest.fixture(scope="module")
def chain() -> FXManipulator:
    return FXManipulator()


def test_gain_changes_loudness_by_the_sampled_db(chain):
    x = noise(6, 3.0, seed=1)
    y, cfg = chain(x, generator=torch.Generator().manual_seed(3), stems="vocals", single_fx="gain")
    delta = integrated_loudness(y, SR) - integrated_loudness(x, SR)
    expected = cfg.values["gain.gain_db"].double()
    assert cfg.applied["gain"].all()
    assert torch.allclose(delta, expected, atol=0.3), (delta, expected)


def test_loudness_matches_pyloudnorm():
    pyln = pytest.importorskip("pyloudnorm")
    g = np.random.default_rng(0)
    t = np.arange(5 * SR) / SR
    x = np.stack([0.2 * np.sin(2 * np.pi * 440 * t), 0.05 * g.standard_normal(t.size)])
    x[:, : SR] *= 0.01  # a quiet first second exercises the relative gate
    ours = float(integrated_loudness(torch.tensor(x, dtype=torch.float32)[None], SR))
    ref = pyln.Meter(SR).integrated_loudness(x.T)
    assert abs(ours - ref) < 0.02, (ours, ref)


@pytest.mark.parametrize("law", [0, 1, 2])
def test_pan_moves_lr_energy_ratio_by_the_pan_law(law):
    x = noise(1, 1.0, seed=2)
    x = torch.cat([x[:, :1], x[:, :1]], dim=1)  # centred source: L == R
    p = torch.tensor([0.3])
    y = F.pan(x, SR, pan=p, pan_law=torch.tensor([law]))
    theta = 0.3 * math.pi / 2
    gl, gr = {1: (0.7, 0.3), 2: (math.cos(theta), math.sin(theta))}.get(
        law, (math.sqrt(0.7 * math.cos(theta)), math.sqrt(0.3 * math.sin(theta)))
    )
    ratio_db = 10 * math.log10(float(y[0, 0].square().sum() / y[0, 1].square().sum()))
    assert ratio_db == pytest.approx(20 * math.log10(gl / gr), abs=1e-3)
    if law == 0:  # the -4.5 dB law: -4.5 dB per side at the centre
        yc = F.pan(x, SR, pan=torch.tensor([0.5]), pan_law=torch.tensor([0]))
        assert 20 * math.log10(float(yc[0, 0].abs().max() / x[0, 0].abs().max())) == pytest.approx(-4.5, abs=0.1)


@pytest.mark.parametrize("width", [0.0, 0.4, 1.0, 1.5, 2.0])
def test_imager_sets_side_energy(width):
    g = torch.Generator().manual_seed(4)
    mid = torch.randn(1, 44100, generator=g)
    side = 0.3 * torch.randn(1, 44100, generator=g)
    x = torch.stack([(mid + side) / 2, (mid - side) / 2], dim=1)
    y = F.stereo_imager(x, SR, width=torch.tensor([width]))
    e = lambda a: float(a.square().sum())  # noqa: E731
    m0, s0 = e(x[:, 0] + x[:, 1]), e(x[:, 0] - x[:, 1])
    m1, s1 = e(y[:, 0] + y[:, 1]), e(y[:, 0] - y[:, 1])
    assert m1 + s1 == pytest.approx(m0 + s0, rel=1e-4)  # energy kept
    share0 = s0 / (m0 + s0)
    if width <= 1:
        assert s1 == pytest.approx(width**2 * s0, rel=1e-4, abs=1e-6)
    else:
        assert s1 / (m1 + s1) == pytest.approx(share0 + (width - 1) * (1 - share0), abs=1e-4)


def crest_db(x: torch.Tensor) -> float:
    return float(20 * torch.log10(x.abs().max() / x.square().mean().sqrt()))


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_compressor_reduces_crest_factor_and_leaves_quiet_signal_alone(backend):
    t = torch.arange(2 * SR) / SR
    envelope = 0.03 + 0.9 * (0.5 + 0.5 * torch.sin(2 * math.pi * 2 * t)) ** 8  # smooth loud swells
    x = (envelope * torch.sin(2 * math.pi * 220 * t)).expand(1, 2, -1).contiguous()
    y = F.compressor(x, SR, threshold_db=-30.0, ratio=8.0, attack_ms=1.0, release_ms=100.0, backend=backend)
    assert crest_db(y) < crest_db(x) - 3.0
    quiet = 0.01 * x / x.abs().max()  # peak -40 dBFS
    yq = F.compressor(quiet, SR, threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=100.0, backend=backend)
    assert torch.equal(yq, quiet)


def test_compressor_static_curve_and_backends_agree():
    # a steady tone well above threshold settles at T + (L - T) / R
    t = torch.arange(SR) / SR
    x = (0.5 * torch.sin(2 * math.pi * 1000 * t)).expand(1, 2, -1).contiguous()
    kw = dict(threshold_db=-30.0, ratio=4.0, attack_ms=1.0, release_ms=5.0)
    y = F.compressor(x, SR, **kw, backend="numba")
    peak_in = 20 * math.log10(0.5)
    peak_out = 20 * math.log10(float(y[0, 0, SR // 2 :].abs().max()))
    assert peak_out == pytest.approx(-30 + (peak_in + 30) / 4, abs=0.5)
    x2 = noise(3, 0.5, seed=6, level=0.3)
    p = dict(threshold_db=torch.tensor([-40.0, -20, -60]), ratio=torch.tensor([4.0, 10, 40]),
             attack_ms=torch.tensor([1.0, 5, 20]), release_ms=torch.tensor([50.0, 200, 500]), knee_db=torch.tensor([0.0, 6, 12]))
    a = F.compressor(x2, SR, **p, backend="numba")
    b = F.compressor(x2, SR, **p, backend="torch")
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max()))


def _level_step(loud_first: bool) -> tuple[torch.Tensor, int]:
    """DC at −40 dBFS and 0 dBFS (1 s each; the loud part first or second): the level steps at ``SR``."""
    quiet, loud = torch.full((SR,), 0.01), torch.full((SR,), 1.0)
    x = torch.cat([loud, quiet] if loud_first else [quiet, loud])
    return x.expand(1, 2, -1).contiguous(), SR


def _time_to_63_percent(reduction_db: np.ndarray, start: int, before: float, after: float) -> float:
    """Seconds from ``start`` until the gain reduction has made 1 − 1/e of its change ``before → after``."""
    target = before + (1 - math.exp(-1)) * (after - before)
    crossed = (reduction_db[start:] >= target) if after > before else (reduction_db[start:] <= target)
    return (int(np.argmax(crossed)) + 1) / SR  # sample `start` is the first one after the step


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("attack_ms, release_ms", [(5.0, 100.0), (20.0, 400.0)])
def test_compressor_attack_and_release_follow_their_time_constants(backend, attack_ms, release_ms):
    """After a step in level the gain reduction makes 63 % (1 − 1/e) of its change in the configured time.

    Hard knee, threshold −20 dB, ratio 4: the static reduction steps between 0 dB (−40 dBFS) and
    (0 − (−20))·(1 − 1/4) = 15 dB (0 dBFS). Attack: the peak hold jumps to 15 dB, the one-pole
    attack smoothing then takes ``attack_ms`` to 63 %. Release: the hold decays with
    ``release_ms`` and the attack smoothing (0.5 ms here) lags it by at most its own time constant.
    """
    kw = dict(threshold_db=-20.0, ratio=4.0, knee_db=0.0, backend=backend)
    x, step = _level_step(loud_first=False)
    y = F.compressor(x, SR, attack_ms=attack_ms, release_ms=release_ms, **kw)
    reduction = -20 * np.log10((y[0, 0] / x[0, 0]).double().numpy())
    assert reduction[:step] == pytest.approx(0.0, abs=1e-9) and reduction[-1] == pytest.approx(15.0, abs=1e-3)
    t_attack = _time_to_63_percent(reduction, step, 0.0, 15.0)
    assert abs(t_attack - attack_ms / 1000) <= 1.5 / SR, (t_attack, attack_ms)

    x, step = _level_step(loud_first=True)
    y = F.compressor(x, SR, attack_ms=0.5, release_ms=release_ms, **kw)
    reduction = -20 * np.log10((y[0, 0] / x[0, 0]).double().numpy())
    assert reduction[step - 1] == pytest.approx(15.0, abs=1e-3)
    t_release = _time_to_63_percent(reduction, step, 15.0, 0.0)
    assert release_ms / 1000 - 1.5 / SR <= t_release <= (release_ms + 0.5) / 1000 + 1.5 / SR, (t_release, release_ms)


def _sos(p: dict, i: int) -> np.ndarray:
    """Example ``i``'s EQ as a scipy ``sos`` array, from the cookbook coefficients."""
    sos = []
    for name, kind in F.EQ_BANDS:
        b, a = biquad_coefficients(kind, p[f"{name}_hz"][i : i + 1].double(), p[f"{name}_gain_db"][i : i + 1].double(),
                                   p[f"{name}_q"][i : i + 1].double(), SR)
        sos.append(np.concatenate([b[0].numpy(), a[0].numpy()]))
    return np.array(sos)


def _eq_params(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    p = {}
    for band, lo, hi in [("low_shelf", 30, 200), ("peak1", 200, 1000), ("peak2", 1000, 3000), ("peak3", 3000, 8000), ("high_shelf", 5000, 10000)]:
        p[f"{band}_gain_db"] = torch.rand(n, generator=g) * 30 - 15
        p[f"{band}_hz"] = lo + (hi - lo) * torch.rand(n, generator=g)
        p[f"{band}_q"] = 0.707 * torch.ones(n) if "shelf" in band else 0.1 + 1.9 * torch.rand(n, generator=g)
    return p


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_eq_matches_analytic_magnitude_response(backend):
    p = _eq_params(3, seed=7)
    n = 2**15
    impulse = torch.zeros(3, 2, n)
    impulse[:, :, 0] = 1.0
    y = F.equalizer(impulse, SR, backend=backend, **p)
    measured = 20 * np.log10(np.abs(np.fft.rfft(y[:, 0].double().numpy(), axis=-1)) + 1e-12)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    band = (freqs > 20) & (freqs < 16000)
    for i in range(3):
        _, h = scipy.signal.sosfreqz(_sos(p, i), worN=freqs, fs=SR)
        analytic = 20 * np.log10(np.abs(h))
        assert np.max(np.abs(measured[i, band] - analytic[band])) < 0.5


def test_rbj_peak_and_shelf_gains_follow_their_definitions():
    f = torch.tensor([1000.0], dtype=torch.float64)
    g = torch.tensor([9.0], dtype=torch.float64)
    q = torch.tensor([0.7], dtype=torch.float64)
    b, a = biquad_coefficients("peak", f, g, q, SR)
    _, h = scipy.signal.freqz(b[0].numpy(), a[0].numpy(), worN=[1000.0], fs=SR)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(9.0, abs=1e-6)  # peak gain at the centre
    b, a = biquad_coefficients("low_shelf", torch.tensor([200.0], dtype=torch.float64), g, q, SR)
    _, h = scipy.signal.freqz(b[0].numpy(), a[0].numpy(), worN=[1.0, 20000.0], fs=SR)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(9.0, abs=0.05)  # shelf gain at DC
    assert 20 * np.log10(abs(h[1])) == pytest.approx(0.0, abs=0.05)


def test_eq_backends_equal_time_domain_reference():
    p = _eq_params(2, seed=8)
    x = noise(2, 0.5, seed=9)
    loop = F.equalizer(x, SR, backend="numba", **p)
    fft = F.equalizer(x, SR, backend="torch", **p)
    ref = [scipy.signal.sosfilt(_sos(p, i), x[i].double().numpy(), axis=-1) for i in range(2)]
    ref = torch.tensor(np.stack(ref), dtype=torch.float32)
    scale = float(ref.abs().max())
    assert torch.allclose(loop, ref, atol=1e-5 * scale)
    assert torch.allclose(fft, ref, atol=1e-4 * scale)


@pytest.mark.parametrize("rt60", [0.5, 1.2, 2.5])
def test_reverb_energy_decay_matches_rt60(rt60):
    ir = synthetic_ir(rt60, generator=torch.Generator().manual_seed(10))
    assert measure_rt60(ir, SR) == pytest.approx(rt60, rel=0.2)
    # through the effect: an impulse, fully wet, reproduces the IR's decay
    n = int(1.3 * rt60 * SR) + SR // 10
    x = torch.zeros(1, 2, n)
    x[:, :, 100] = 1.0
    y = F.convolution_reverb(x, SR, ir=ir[None], dry_weight=torch.zeros(1))
    assert measure_rt60(y[0, :, 100:], SR) == pytest.approx(rt60, rel=0.2)


def test_reverb_in_chain_uses_bank_rt60(chain):
    x = torch.zeros(4, 2, 5 * SR)
    x[:, :, 10] = 1.0
    y, cfg = chain(x, generator=torch.Generator().manual_seed(11), stems="vocals", single_fx="reverb")
    for i in range(4):
        assert measure_rt60(y[i, :, 10:], SR) == pytest.approx(float(cfg.values["reverb.rt60_s"][i]), rel=0.2)


def test_k_weighting_matches_the_standard_48k_coefficients():
    """ITU-R BS.1770-4 Tables 1 and 2 give the K-weighting biquads at 48 kHz."""
    from mixfx.fx.loudness import k_weighting_coefficients

    itu = [([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585]),
           ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])]
    freqs = [20.0, 100.0, 997.0, 2000.0, 5000.0, 15000.0]
    for (b, a), (bi, ai) in zip(k_weighting_coefficients(48000), itu):
        _, ours = scipy.signal.freqz(b[0].numpy(), a[0].numpy(), worN=freqs, fs=48000)
        _, ref = scipy.signal.freqz(bi, ai, worN=freqs, fs=48000)
        assert np.max(np.abs(20 * np.log10(np.abs(ours) / np.abs(ref)))) < 0.05


def test_k_weighting_cpu_kernel_equals_frequency_domain():
    from mixfx.fx.loudness import k_weighting

    from mixfx.fx.kernels import _numba as kernels

    x = noise(2, 1.0, seed=12)
    loop = k_weighting(x, SR)
    have = kernels.HAVE_NUMBA
    try:
        kernels.HAVE_NUMBA = False  # force the FFT formulation used on CUDA
        fft = k_weighting(x, SR)
    finally:
        kernels.HAVE_NUMBA = have
    assert torch.allclose(loop, fft, atol=1e-5 * float(loop.abs().max()))
