"""NT-Xent (vs a loop written from the SimCLR definition, and across 2 gloo ranks) and the L/R/M/S
multi-scale spectral loss (vs a numpy STFT framed by hand)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mixfx.errors import MixfxError
from mixfx.losses.contrastive import NTXentLoss, gather_with_grad, nt_xent
from mixfx.losses.level import level_error_db, rms_db
from mixfx.losses.spectral import SpectralLoss, SpectralLossConfig, SpectralTarget, multi_scale_spectral_loss, spectral_loss

# ------------------------------------------------------------------------------------ NT-Xent


def _nt_xent_loop(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    """SimCLR's definition, one anchor at a time."""
    z = np.concatenate([a, b]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    n = n2 // 2
    total = 0.0
    for k in range(n2):
        pos = (k + n) % n2
        num = math.exp(float(z[k] @ z[pos]) / tau)
        den = sum(math.exp(float(z[k] @ z[j]) / tau) for j in range(n2) if j != k)
        total += -math.log(num / den)
    return total / n2


def test_nt_xent_matches_the_definition_on_the_directclr_subvector():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 12, generator=g, dtype=torch.float64)
    b = a + 0.5 * torch.randn(5, 12, generator=g, dtype=torch.float64)
    b[:, 8:] = 100 * torch.randn(5, 4, generator=g, dtype=torch.float64)  # beyond d0: must not matter
    got = nt_xent(a, b, temperature=0.1, d0=8)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(_nt_xent_loop(a[:, :8].numpy(), b[:, :8].numpy(), 0.1), rel=1e-10)
    # d0 larger than the embedding is clamped; None uses everything
    full = _nt_xent_loop(a.numpy(), b.numpy(), 0.5)
    assert float(nt_xent(a, b, temperature=0.5, d0=360)) == pytest.approx(full, rel=1e-10)
    assert float(nt_xent(a, b, temperature=0.5, d0=None)) == pytest.approx(full, rel=1e-10)
    # symmetric in the two views and invariant to the scale of each embedding
    assert float(nt_xent(b, a, d0=8)) == pytest.approx(float(got), rel=1e-12)
    assert float(nt_xent(3 * a, 0.2 * b, d0=8)) == pytest.approx(float(got), rel=1e-10)


def test_nt_xent_is_low_for_aligned_views_and_high_for_random_ones():
    g = torch.Generator().manual_seed(1)
    n, dim = 32, 2048
    a = torch.randn(n, dim, generator=g)
    aligned = nt_xent(a, a + 0.01 * torch.randn(n, dim, generator=g))
    rand = nt_xent(a, torch.randn(n, dim, generator=g))
    # aligned: positive cosine ≈ 1, negatives ≈ 0 → loss ≈ log(1 + (2N−2)·e^{−1/τ})
    assert float(aligned) == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(-10)), abs=2e-3)
    # random: every similarity ≈ 0 → loss ≈ log(2N − 1)
    assert float(rand) == pytest.approx(math.log(2 * n - 1), abs=0.2)
    loss, terms = NTXentLoss(output="full")(a, a.clone())
    assert float(terms["accuracy"]) == 1.0 and float(terms["positive_cosine"]) == pytest.approx(1.0)
    # a single pair has no negatives: loss 0
    assert float(nt_xent(a[:1], torch.randn(1, dim))) == 0.0


def test_nt_xent_gradient_and_errors():
    a = torch.randn(6, 20, requires_grad=True)
    b = torch.randn(6, 20, requires_grad=True)
    nt_xent(a, b, d0=10).backward()
    assert torch.isfinite(a.grad).all() and a.grad[:, 10:].abs().max() == 0 and a.grad[:, :10].abs().max() > 0
    assert gather_with_grad(a) is a  # no process group: no-op
    with pytest.raises(MixfxError, match="equal shape"):
        nt_xent(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(MixfxError, match="temperature"):
        nt_xent(a, b, temperature=0)
    # a custom gather hook is applied to both views
    seen = []
    nt_xent(a, b, gather=lambda t: seen.append(t.shape) or t)
    assert seen == [(6, 20), (6, 20)]


def _rank_worker(rank: int, world: int, init_file: str, a: torch.Tensor, b: torch.Tensor, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        n = a.shape[0] // world
        la = a[rank * n:(rank + 1) * n].clone().requires_grad_(True)
        lb = b[rank * n:(rank + 1) * n].clone().requires_grad_(True)
        loss = nt_xent(la, lb, d0=6)
        loss.backward()
        torch.save({"loss": loss.detach(), "ga": la.grad, "gb": lb.grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")
def test_nt_xent_gathers_across_ranks_with_gradients(tmp_path):
    world = 2
    g = torch.Generator().manual_seed(2)
    a = torch.randn(8, 10, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.randn(8, 10, generator=g, dtype=torch.float64)
    # spawn (not fork: forking after torch's thread pools exist can deadlock)
    mp.spawn(_rank_worker, args=(world, str(tmp_path / "init"), a, b, str(tmp_path)), nprocs=world, join=True)
    ga, gb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    ref = nt_xent(ga, gb, d0=6)  # the global batch in one process
    ref.backward()
    for rank in range(world):
        res = torch.load(tmp_path / f"rank{rank}.pt")
        assert float(res["loss"]) == pytest.approx(float(ref.detach()), rel=1e-12)
        rows = slice(rank * 4, (rank + 1) * 4)
        # each rank holds world × its share of the global gradient; DDP's averaging divides by world
        assert torch.allclose(res["ga"], world * ga.grad[rows], atol=1e-12)
        assert torch.allclose(res["gb"], world * gb.grad[rows], atol=1e-12)


# ---------------------------------------------------------------------------------- spectral


def _np_mag(x: np.ndarray, n_fft: int, hop: int, drop_dc=False, drop_last=False) -> np.ndarray:
    """Centred STFT magnitude built by hand: pad n_fft/2 (reflect, or zeros if too short), frame, Hann, rfft."""
    mode = "reflect" if len(x) > n_fft // 2 else "constant"
    xp = np.pad(x, n_fft // 2, mode=mode)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    n_frames = 1 + (len(xp) - n_fft) // hop
    spec = np.stack([np.fft.rfft(xp[t * hop:t * hop + n_fft] * win) for t in range(n_frames)], axis=1)
    mag = np.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-7)
    if drop_last and len(x) % hop == 0:
        mag = mag[:, :-1]
    if drop_dc:
        mag = mag[1:]
    return mag


def _np_loss(y: np.ndarray, gt: np.ndarray, ffts, alpha=0.1, weights=(1, 1, 1, 1), **quirks) -> dict:
    chans = {"left": lambda s: s[0], "right": lambda s: s[1], "mid": lambda s: s[0] + s[1], "side": lambda s: s[0] - s[1]}
    out = {}
    for name, f in chans.items():
        total = 0.0
        for n in ffts:
            S, Sh = _np_mag(f(gt), n, n // 4, **quirks), _np_mag(f(y), n, n // 4, **quirks)
            total += (1 - alpha) * np.mean(np.abs(S - Sh)) + alpha * np.mean((np.log10(S + 1e-7) - np.log10(Sh + 1e-7)) ** 2)
        out[name] = total
    out["total"] = sum(w * out[k] for w, k in zip(weights, ("left", "right", "mid", "side")))
    return out


@pytest.mark.parametrize("length", [300, 256, 20])
def test_spectral_loss_matches_numpy_hand_computation(length):
    rng = np.random.default_rng(length)
    gt = rng.standard_normal((2, 2, length))
    y = gt + 0.3 * rng.standard_normal((2, 2, length))
    cfg = SpectralLossConfig(fft_sizes=(64, 32))
    loss, terms = spectral_loss(torch.from_numpy(y), torch.from_numpy(gt), config=cfg, reduction="none", output="full")
    assert loss.shape == (2,)
    for i in range(2):
        ref = _np_loss(y[i], gt[i], (64, 32))
        assert float(loss[i]) == pytest.approx(ref["total"], rel=1e-9)
        for name in ("left", "right", "mid", "side"):
            assert float(terms[name][i]) == pytest.approx(ref[name], rel=1e-9)
        assert float(terms["mid_side"][i]) == pytest.approx((ref["mid"] + ref["side"]) / 2, rel=1e-9)
    # the official variant: halves of eq. 1, DC bin and (when length % hop == 0) the last frame dropped
    off = SpectralLossConfig.official()
    off = SpectralLossConfig.from_dict({**off.to_dict(), "fft_sizes": [64, 32]})
    got = spectral_loss(torch.from_numpy(y), torch.from_numpy(gt), config=off)
    ref = np.mean([_np_loss(y[i], gt[i], (64, 32), weights=(0.5,) * 4, drop_dc=True, drop_last=True)["total"]
                   for i in range(2)])
    assert float(got) == pytest.approx(ref, rel=1e-9)
    # a precomputed SpectralTarget gives the same hand-computed values (and takes its config from the target)
    target = SpectralTarget(torch.from_numpy(gt), off)
    assert float(spectral_loss(torch.from_numpy(y), target)) == pytest.approx(ref, rel=1e-9)
    loss, terms = spectral_loss(torch.from_numpy(y), SpectralTarget(torch.from_numpy(gt), cfg), reduction="none", output="full")
    for i in range(2):
        ref_i = _np_loss(y[i], gt[i], (64, 32))
        assert float(loss[i]) == pytest.approx(ref_i["total"], rel=1e-9)
        assert float(terms["side"][i]) == pytest.approx(ref_i["side"], rel=1e-9)


def test_spectral_target_is_reused_and_checked():
    g = torch.Generator().manual_seed(5)
    gt = torch.randn(2, 2, 4000, generator=g)
    target = SpectralTarget(gt, SpectralLossConfig(w_mid=0))
    for scale in (0.5, 2.0):  # one target, several estimates
        y = scale * gt + 0.1 * torch.randn(2, 2, 4000, generator=g)
        assert float(spectral_loss(y, target)) == pytest.approx(float(spectral_loss(y, gt, config=SpectralLossConfig(w_mid=0))), rel=1e-6)
    assert target.names == ["left", "right", "side"]
    with pytest.raises(MixfxError, match="config differs"):
        spectral_loss(gt, target, config=SpectralLossConfig())
    with pytest.raises(MixfxError, match="equal shape"):
        spectral_loss(gt[:, :, :100], target)
    with pytest.raises(MixfxError, match=r"\(batch, 2, samples\)"):
        SpectralTarget(torch.zeros(2, 100))


def test_spectral_loss_properties():
    g = torch.Generator().manual_seed(3)
    gt = torch.randn(3, 2, 2048, generator=g)
    assert float(spectral_loss(gt, gt.clone())) == 0.0
    near = spectral_loss(gt + 0.01 * torch.randn(3, 2, 2048, generator=g), gt)
    far = spectral_loss(gt + 1.0 * torch.randn(3, 2, 2048, generator=g), gt)
    assert 0 < float(near) < float(far)
    # swapping L and R leaves L, R terms swapped, mid unchanged and side's magnitude unchanged
    y = gt + 0.2 * torch.randn(3, 2, 2048, generator=g)
    _, t1 = spectral_loss(y, gt, output="full")
    _, t2 = spectral_loss(y.flip(1), gt.flip(1), output="full")
    assert float(t1["left"]) == pytest.approx(float(t2["right"]), rel=1e-5)
    assert float(t1["mid"]) == pytest.approx(float(t2["mid"]), rel=1e-5)
    assert float(t1["side"]) == pytest.approx(float(t2["side"]), rel=1e-5)
    # channel weights; zero-weight channels are skipped
    only_mid = SpectralLossConfig(w_left=0, w_right=0, w_side=0, w_mid=2.0)
    loss, terms = spectral_loss(y, gt, config=only_mid, output="full")
    assert set(terms) == {"mid", "mid_lin", "mid_log"} and float(loss) == pytest.approx(2 * float(t1["mid"]), rel=1e-6)
    # gradients are finite even on digital silence (magnitude eps)
    z = torch.zeros(1, 2, 1024, requires_grad=True)
    SpectralLoss()(z, torch.randn(1, 2, 1024, generator=g)).backward()
    assert torch.isfinite(z.grad).all()


def test_spectral_loss_errors():
    with pytest.raises(MixfxError, match="equal shape"):
        spectral_loss(torch.zeros(1, 2, 100), torch.zeros(1, 2, 99))
    with pytest.raises(MixfxError, match=r"\(batch, 2, samples\)"):
        spectral_loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 100))
    with pytest.raises(MixfxError, match="alpha"):
        SpectralLossConfig(alpha=1.5)
    with pytest.raises(MixfxError, match="weights"):
        SpectralLossConfig(w_left=0, w_right=0, w_mid=0, w_side=0)
    with pytest.raises(MixfxError, match="reduction"):
        spectral_loss(torch.zeros(1, 2, 100), torch.zeros(1, 2, 100), reduction="sum")


def test_level_error_is_the_rms_difference_in_db_and_symmetric():
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(3, 2, 4000, generator=g)
    expected = 10 * np.log10((gt.double().numpy() ** 2).mean(axis=(1, 2)) + 1e-8)
    np.testing.assert_allclose(rms_db(gt).numpy(), expected, rtol=0, atol=1e-5)  # dB, float32
    assert rms_db(torch.ones(1, 2, 10)).item() == pytest.approx(0.0, abs=1e-6)  # full-scale DC: 0 dBFS
    six = 20 * math.log10(2)
    np.testing.assert_allclose(level_error_db(2 * gt, gt).numpy(), six, atol=1e-5)
    np.testing.assert_allclose(level_error_db(0.5 * gt, gt).numpy(), six, atol=1e-5)  # −6 dB costs what +6 dB costs


def test_spectral_loss_linear_term_charges_loud_errors_twice_quiet_ones():
    """Why the level term exists: |S − g·S| = |1 − g|·S, so g = 2 (+6 dB) costs twice g = 0.5 (−6 dB)."""
    gt = torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))
    cfg = SpectralLossConfig(fft_sizes=(512, 256), mag_eps=0.0, eps=1e-7)
    loud, _ = multi_scale_spectral_loss(2 * gt, gt, cfg)
    quiet, _ = multi_scale_spectral_loss(0.5 * gt, gt, cfg)
    np.testing.assert_allclose((loud / quiet).numpy(), 2.0, rtol=1e-5)
