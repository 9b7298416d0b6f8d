"""Baselines, Table 1 rendering, 2-D maps and the no-CV DCI path used by ``mixeval disentangle``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.fft
import torch

from mixeval.baselines import HandcraftedFeatures, _dct_matrix, noise_codes, random_encoder
from mixfx.models.spectral_frontend import mel_filterbank
from mixeval.errors import MixevalError
from mixeval.metrics.disentangle import dci
from mixeval.plots.tsne import Panel, embed_2d, save_figure, scatter_grid
from mixeval.tables.table1 import table1_frame, write_table1
from mixfx.models.encoder import FXEncoderConfig

pytestmark = pytest.mark.usefixtures("one_thread")


SR = 44100


def tone(seconds: float = 1.0, freq: float = 440.0, seed: int = 0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.sin(2 * math.pi * freq * t) + 0.05 * torch.randn(t.numel(), generator=g)
    return torch.stack([x, x])[None]  # (1, 2, T), mono content


def test_dct_and_mel_filterbank_against_references():
    m = _dct_matrix(16, 16).double().numpy()
    np.testing.assert_allclose(m @ m.T, np.eye(16), atol=1e-6)  # orthonormal
    x = np.random.default_rng(0).normal(size=16)
    np.testing.assert_allclose(m @ x, scipy.fft.dct(x, type=2, norm="ortho"), atol=1e-5)
    fb = mel_filterbank(1025, 40, SR).numpy()
    assert fb.shape == (40, 1025) and fb.min() >= 0
    freqs = np.linspace(0, SR / 2, 1025)
    centres = freqs[fb.argmax(1)]
    mel = 2595 * np.log10(1 + centres / 700)
    assert np.all(np.diff(centres) >= 0)
    assert np.ptp(np.diff(mel)[10:]) < 0.35 * np.mean(np.diff(mel)[10:])  # evenly spaced in mel


def test_handcrafted_features_follow_the_effects():
    h = HandcraftedFeatures(SR)
    d = h.dim
    x = tone()
    base = h(x)[0]
    assert base.shape == (d,) and torch.isfinite(base).all()
    names = {"corr": d - 3, "side_mid_db": d - 2, "lr_db": d - 1, "lufs": d - 4, "peak_db": d - 6}
    assert base[names["corr"]] > 0.999 and base[names["side_mid_db"]] < -60  # L = R: mono
    louder = h(x * 10 ** (6 / 20))[0]
    assert abs(float(louder[names["lufs"]] - base[names["lufs"]]) - 6.0) < 0.05  # gain shifts the loudness
    assert abs(float(louder[names["peak_db"]] - base[names["peak_db"]]) - 6.0) < 0.01
    left = x * torch.tensor([1.0, 0.5])[None, :, None]
    assert abs(float(h(left)[0][names["lr_db"]]) - 20 * math.log10(2)) < 0.01  # panned left: +6 dB
    bright = h(tone(freq=4000.0))[0]
    assert bright[80] > base[80]  # spectral centroid mean (first feature after the 80 MFCC stats)
    batch = h(torch.cat([x, left]))
    torch.testing.assert_close(batch[1], h(left)[0], atol=1e-4, rtol=1e-4)
    with pytest.raises(MixevalError, match="expected audio"):
        h(torch.zeros(1, 1, 100))


def test_random_encoder_and_noise_are_seeded():
    cfg = FXEncoderConfig.tiny()
    state = torch.random.get_rng_state()
    a, b, c = random_encoder(cfg, seed=3), random_encoder(cfg, seed=3), random_encoder(cfg, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    wa, wb, wc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc) and not a.training
    n1 = noise_codes(5, 7, rng=np.random.default_rng(1))
    assert n1.shape == (5, 7) and np.array_equal(n1, noise_codes(5, 7, rng=np.random.default_rng(1)))


def test_dci_without_cv_matches_the_cv_run():
    rng = np.random.default_rng(0)
    f = rng.uniform(size=(60, 3))
    codes = np.concatenate([f @ rng.normal(size=(3, 4)), rng.normal(size=(60, 2))], axis=1)
    grid = dict(max_depths=(8,), max_features=(0.5,), n_jobs=1, seed=2)
    with_cv, no_cv = dci(f, codes, n_splits=3, **grid), dci(f, codes, n_splits=0, **grid)
    assert (with_cv.disentanglement, with_cv.completeness, with_cv.informativeness) == pytest.approx(
        (no_cv.disentanglement, no_cv.completeness, no_cv.informativeness), abs=1e-12)
    assert np.isfinite(with_cv.informativeness_cv) and np.isnan(no_cv.informativeness_cv)
    with pytest.raises(MixevalError, match="one-point grid"):
        dci(f, codes, n_splits=0, max_depths=(8, 16), max_features=(0.5,))


def scores_frame() -> pd.DataFrame:
    rows = []
    values = {"A": (0.5, 0.7), "B": (0.6, 0.4), "noise": (0.1, 0.8), "ideal": (0.9, 1.0)}
    types = {"A": "encoder", "B": "encoder", "noise": "noise", "ideal": "ideal"}
    for label, (mig_base, expl_base) in values.items():
        for seed in range(3):
            for case in ("multitrack_full", "stem_full", "multitrack_single", "stem_single"):
                rows.append(dict(label=label, type=types[label], dim=8, case=case, seed=seed, metric="dcimig",
                                 value=mig_base + 0.01 * seed))
                rows.append(dict(label=label, type=types[label], dim=8, case=case, seed=seed,
                                 metric="dci_informativeness", value=expl_base - 0.02 * seed))
    return pd.DataFrame(rows)


def test_table1_numbers_and_bold(tmp_path):
    table = table1_frame(scores_frame())
    assert list(table["label"]) == ["A", "B", "noise", "ideal"]
    a = table.iloc[0]
    assert a["multitrack_full.dcimig.mean"] == pytest.approx(np.mean([0.5, 0.51, 0.52]))
    assert a["multitrack_full.dcimig.std"] == pytest.approx(np.std([0.5, 0.51, 0.52]))
    files = write_table1(table, tmp_path / "table1", note="Protocol: paper")
    assert set(files) == {"csv", "md", "tex"}
    md = files["md"].read_text().splitlines()
    b_row = next(line for line in md if line.startswith("| B "))
    noise_row = next(line for line in md if line.startswith("| noise "))
    ideal_row = next(line for line in md if line.startswith("| ideal "))
    assert "**0.610 ± 0.008**" in b_row  # best DCIMIG among competitors (ideal excluded)
    assert "**0.780 ± 0.016**" in noise_row  # noise is best on Expl here, and the table shows it
    assert "**" not in ideal_row
    assert "Protocol: paper" in files["md"].read_text()
    tex = files["tex"].read_text()
    assert r"\multicolumn{2}{c}{Multitrack, full FX}" in tex and r"\textbf{0.610 $\pm$ 0.008}" in tex
    csv = pd.read_csv(files["csv"])
    assert csv["stem_single.dci_informativeness.mean"].dtype == float
    with pytest.raises(MixevalError, match="no scores"):
        table1_frame(scores_frame(), order=["C"])


def test_maps_and_grid(tmp_path):
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(3), 10)
    codes = rng.normal(size=(30, 5)) + 5 * groups[:, None]
    for method in ("tsne", "pca"):
        xy = embed_2d(codes, method=method)
        assert xy.shape == (30, 2) and np.isfinite(xy).all()
    xy = embed_2d(codes, method="pca")
    centres = np.stack([xy[groups == g].mean(0) for g in range(3)])
    spread = max(np.linalg.norm(xy[groups == g] - centres[g], axis=1).mean() for g in range(3))
    assert np.linalg.norm(centres[0] - centres[2]) > 3 * spread  # the clusters stay apart
    assert np.allclose(embed_2d(np.ones((5, 3)), method="pca"), 0)
    with pytest.raises(MixevalError, match="method"):
        embed_2d(codes, method="umap")
    panel = Panel(codes, groups)
    fig = scatter_grid([("enc", [panel, Panel(codes, np.array(["eq", "pan", "gain"])[groups], legend=True)])],
                       ["full", "single"], method="pca")
    paths = save_figure(fig, tmp_path / "fig2")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(MixevalError, match="panels"):
        scatter_grid([("enc", [panel])], ["full", "single"])
