"""``mixeval table2``: measures against hand computations, the item manifest, the DSP baseline, the pipeline, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import torch
from typer.testing import CliRunner

from mixeval.cli import app
from mixeval.metrics.style import LAMBDA, embedding_distance, lmss_terms
from mixeval.transfer_set import (
    TransferSetConfig, load_manifest, render_transfer_set, sample_transfer_set, save_manifest,
)
from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import synthetic_ir_bank

runner = CliRunner()
SR = 44100


@pytest.fixture(autouse=True, scope="module")
def _threads(one_thread):
    yield


@pytest.fixture(scope="module")
def chain() -> FXManipulator:
    return FXManipulator(ir_bank=synthetic_ir_bank(per_group=1, groups_s=((0.2, 0.3), (0.5, 0.6))))


# ----------------------------------------------------------------------------------------- measures


def _hand_mss(est: np.ndarray, tgt: np.ndarray) -> float:
    """Official-scale multi-scale spectral loss of one channel, written from its definition with numpy."""
    total = 0.0
    for n_fft in (4096, 2048, 1024, 512):
        hop = n_fft // 4
        window = scipy.signal.get_window("hann", n_fft, fftbins=True)

        def mag(x):
            padded = np.pad(x, n_fft // 2, mode="reflect")
            frames = 1 + len(x) // hop
            spec = np.stack([np.fft.rfft(window * padded[k * hop:k * hop + n_fft]) for k in range(frames)], axis=1)
            m = np.sqrt(np.abs(spec) ** 2 + 1e-7)
            if len(x) % hop == 0:
                m = m[:, :-1]  # the official front end drops the last frame then
            return m[1:]  # and the DC bin

        s, s_hat = mag(tgt), mag(est)
        total += 0.9 * np.mean(np.abs(s - s_hat)) + 0.1 * np.mean((np.log10(s + 1e-7) - np.log10(s_hat + 1e-7)) ** 2)
    return total


def test_lmss_columns_equal_a_hand_computation():
    g = np.random.default_rng(0)
    gt = 0.1 * g.standard_normal((1, 2, 6000))
    y = 0.7 * gt + 0.02 * g.standard_normal((1, 2, 6000))
    terms = lmss_terms(torch.tensor(y, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32))
    yl, yr, tl, tr = y[0, 0], y[0, 1], gt[0, 0], gt[0, 1]
    lr = (_hand_mss(yl, tl) + _hand_mss(yr, tr)) / 2
    ms = (_hand_mss(yl + yr, tl + tr) + _hand_mss(yl - yr, tl - tr)) / 2
    assert terms["left_right"][0] == pytest.approx(lr, rel=2e-4)
    assert terms["mid_side"][0] == pytest.approx(ms, rel=2e-4)


def test_swapping_left_and_right_leaves_both_lmss_columns_unchanged():
    g = torch.Generator().manual_seed(1)
    gt = 0.1 * torch.randn(3, 2, 5000, generator=g)
    y = gt * torch.tensor([0.5, 1.5]).view(1, 2, 1) + 0.01 * torch.randn(3, 2, 5000, generator=g)
    a, b = lmss_terms(y, gt), lmss_terms(y.flip(1), gt.flip(1))
    assert not np.allclose(a["left_right"], 0)
    np.testing.assert_allclose(a["left_right"], b["left_right"], rtol=1e-5)
    np.testing.assert_allclose(a["mid_side"], b["mid_side"], rtol=1e-5)


def test_embedding_distance_is_lambda_times_the_mean_absolute_difference():
    a = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(embedding_distance(a, b), [LAMBDA * 6 / 4, 0.0])
    e = torch.randn(5, 64)
    assert np.all(embedding_distance(e, e) == 0)


# ----------------------------------------------------------------------------------------- items


def test_manifest_round_trips_to_bit_identical_items(synth_root, chain, tmp_path):
    data = MultitrackSegments(synth_root, "test")
    cfg = TransferSetConfig(examples=3, seconds=1.0, reference="other-song", seed=4)
    first = sample_transfer_set(data, chain, cfg)
    assert all(i.ref_song != i.song for i in first.items)
    path = save_manifest(first, tmp_path / "items.json")
    again = load_manifest(path, chain)
    assert again.items == first.items and again.key == first.key
    a = render_transfer_set(first, data, chain)
    b = render_transfer_set(again, data, chain)
    for part in ("x", "ref", "gt"):
        for stem, v in a[part].items():
            assert torch.equal(v, b[part][stem]), (part, stem)
    # the same seed draws the same set; another seed another one
    assert sample_transfer_set(data, chain, cfg).key == first.key
    assert sample_transfer_set(data, chain, TransferSetConfig(examples=3, seconds=1.0, seed=5)).key != first.key


def test_same_song_references_come_from_the_input_song(synth_root, chain):
    data = MultitrackSegments(synth_root, "test")
    s = sample_transfer_set(data, chain, TransferSetConfig(examples=4, seconds=1.0))
    assert all(i.ref_song == i.song and i.ref_start != i.start for i in s.items)


# ----------------------------------------------------------------------------------------- DSP baseline


def test_dsp_baseline_moves_each_feature_towards_the_reference():
    from mixeval.dsp_baseline import match_reference_features
    from mixfx.fxnorm.features import measure_feature

    g = torch.Generator().manual_seed(3)
    n = SR * 3
    t = torch.arange(n) / SR
    # input: bright, centred, loud; reference: dark (low-passed), wide and left-heavy, quieter
    x = 0.05 * torch.randn(2, n, generator=g) + 0.1 * torch.sin(2 * torch.pi * 440 * t)
    x = torch.stack([x[0] + x[1], x[0] + x[1]]) * 0.5 + 0.01 * x
    raw = torch.randn(2, n, generator=g)
    b, a = scipy.signal.butter(2, 800, fs=SR)
    dark = torch.from_numpy(scipy.signal.lfilter(b, a, raw.numpy()).astype(np.float32))
    ref = 0.03 * torch.stack([1.6 * dark[0], 0.6 * dark[1]])
    y = match_reference_features(x, ref, "other", rng=np.random.default_rng(0))
    for feature in ("imager", "panning", "loudness"):
        fx, fr, fy = (measure_feature(v, feature) for v in (x, ref, y))
        assert abs(fy - fr) < abs(fx - fr), (feature, fx, fr, fy)
    ex, er, ey = (measure_feature(v, "eq") for v in (x, ref, y))
    log = lambda c: np.log10(c + 1e-9)  # noqa: E731
    band = slice(1000, 20000)  # ≈ 0.7–13 kHz bins of the 65536-point spectrum
    assert np.mean(np.abs(log(ey[band]) - log(er[band]))) < 0.5 * np.mean(np.abs(log(ex[band]) - log(er[band])))


# ----------------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def models(synth_root, tmp_path_factory) -> dict[str, Path]:
    """Two tiny trained FXencoder + MixFXcloner pairs (a few steps each) and an evaluator."""
    from mixfx.pipelines.train_cloner import train_cloner
    from mixfx.pipelines.train_encoder import train_encoder
    from mixfx.train.config import ClonerTrainConfig, EncoderTrainConfig

    root = tmp_path_factory.mktemp("table2_models")
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        ecfg = EncoderTrainConfig.tiny(steps=2, val_every=2, checkpoint_every=2, val_batches=1, contents=2, seed=seed)
        enc = train_encoder(synth_root, root / f"enc_{name}", ecfg, device="cpu", allow_unnormalized=True)
        ccfg = ClonerTrainConfig.tiny(steps=2, val_every=2, checkpoint_every=2, batch=2, seed=seed)
        cl = train_cloner(synth_root, enc, root / f"cl_{name}", ccfg, device="cpu")
        out[f"enc_{name}"], out[f"cl_{name}"] = Path(enc), Path(cl)
    return out


def run_cli(*args) -> tuple[int, str, str]:
    res = runner.invoke(app, ["table2", *map(str, args)])
    return res.exit_code, res.stdout, res.stderr


SMALL = ["--examples", "3", "--seconds", "1.0", "--batch-size", "3"]


def test_model_free_rows_need_no_model(synth_root, tmp_path):
    out = tmp_path / "free"
    code, text, err = run_cli("--data", synth_root, "--out", out, *SMALL, "--save-audio")
    assert code == 0, err
    import soundfile as sf

    for name in ("x", "ref", "gt", "y_DSP_baseline"):
        for part in ("mixture", "vocals"):
            info = sf.info(str(out / "audio" / "item002" / part / f"{name}.wav"))
            assert info.samplerate == SR and info.channels == 2 and info.frames == SR
    table = pd.read_csv(out / "table2.csv")
    assert list(table["method"]) == ["Input", "oracle", "DSP baseline"]
    assert table["dphi_y_gt_stem"].isna().all()  # no evaluator: ΔΦ columns empty, said so
    assert "λ·ΔΦ columns are empty" in err and "separated stems" in err
    ex = pd.read_csv(out / "examples.csv")
    assert len(ex[(ex["row"] == "Input") & (ex["case"] == "stem")]) == 4 * 3
    assert len(ex[(ex["row"] == "Input") & (ex["case"] == "multitrack")]) == 3


def test_table2_with_two_trained_models_and_reload_of_the_items(synth_root, models, tmp_path):
    out = tmp_path / "t2"
    args = ["--data", synth_root, "--out", out, *SMALL,
            "--model", f"Ψa={models['enc_a']},{models['cl_a']}", "--model", f"Ψb={models['enc_b']},{models['cl_b']}",
            "--evaluator", models["enc_a"]]
    code, text, err = run_cli(*args)
    assert code == 0, err
    for name in ("table2.csv", "table2.md", "table2.tex", "table2_long.csv", "examples.csv", "items.json", "run.json",
                 "fig_table2.png", "fig_table2.pdf"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "table2.csv").set_index("method")
    assert list(table.index) == ["Input", "oracle", "DSP baseline", "Ψa", "Ψb"]
    for col in ("lmss_lr", "lmss_ms", "dphi_y_gt", "mrstft", "rms_db", "width", "loudness_lu"):
        for case in ("multitrack", "stem"):
            assert table.loc["oracle", f"{col}_{case}"] == pytest.approx(0, abs=1e-9), (col, case)
            assert table.loc["Input", f"{col}_{case}"] > 0, (col, case)
    # Input's y–ref and y–gt distances are the evaluator's own distances of x
    run = json.loads((out / "run.json").read_text())
    assert run["floor_gt_ref"]["stem"] > 0 and len(run["models"]) == 2 and run["models"][0]["encoder_sha256"]
    assert "floor" in text or "gt and ref" in text
    assert table.loc["oracle", "dphi_y_ref_stem"] == pytest.approx(run["floor_gt_ref"]["stem"])
    # the Input row of the ΔΦ columns equals the evaluator's L1 distance computed directly
    from mixfx.models.loading import load_encoder

    ev = load_encoder(models["enc_a"])
    data = MultitrackSegments(synth_root, "test")
    from mixeval.transfer_set import load_manifest as lm

    s = lm(out / "items.json", FXManipulator())
    audio = render_transfer_set(s, data, FXManipulator())
    with torch.no_grad():
        e_x = ev(audio["x"]["vocals"])
        e_gt = ev(audio["gt"]["vocals"])
    direct = (LAMBDA * (e_x - e_gt).abs().mean(dim=1)).numpy()
    ex = pd.read_csv(out / "examples.csv")
    got = ex[(ex["row"] == "Input") & (ex["stem"] == "vocals")].sort_values("item")["dphi_y_gt"].to_numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-4)
    # --items reproduces the same per-example values
    again = tmp_path / "again"
    code, _, err = run_cli("--data", synth_root, "--out", again, "--items", out / "items.json", "--batch-size", "3",
                           "--model", f"Ψa={models['enc_a']},{models['cl_a']}", "--model", f"Ψb={models['enc_b']},{models['cl_b']}",
                           "--evaluator", models["enc_a"])
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(out / "examples.csv"), pd.read_csv(again / "examples.csv"))
    # reuse=True with identical inputs returns the written results without recomputing (files untouched);
    # any change of an input (here a model file's bytes) computes again
    from mixeval.pipelines.table2 import ModelSpec, Table2Config, run_table2

    specs = [ModelSpec("Ψa", Path(models["enc_a"]), Path(models["cl_a"])), ModelSpec("Ψb", Path(models["enc_b"]), Path(models["cl_b"]))]
    stamp = (again / "table2.csv").stat().st_mtime_ns
    res = run_table2(synth_root, again, models=specs, evaluator=models["enc_a"], items=out / "items.json",
                     config=Table2Config(batch_size=3), reuse=True)
    assert res.reused and (again / "table2.csv").stat().st_mtime_ns == stamp
    assert res.markdown == (again / "table2.md").read_text(encoding="utf-8")
    pd.testing.assert_frame_equal(res.examples, pd.read_csv(again / "examples.csv"))
    changed = tmp_path / "enc_b_copy.pt"
    changed.write_bytes(Path(models["enc_b"]).read_bytes() + b"\0")  # same weights, other bytes: another SHA-256
    specs[1] = ModelSpec("Ψb", changed, Path(models["cl_b"]))
    res = run_table2(synth_root, again, models=specs, evaluator=models["enc_a"], items=out / "items.json",
                     config=Table2Config(batch_size=3), reuse=True)
    assert not res.reused
    pd.testing.assert_frame_equal(res.examples, pd.read_csv(out / "examples.csv"))


def test_bad_input_gives_one_line_and_writes_nothing(synth_root, models, tmp_path):
    from mixfx.io.checkpoint import save_model_checkpoint
    from mixfx.models.cloner import ClonerConfig, MixFXCloner

    wide = save_model_checkpoint(tmp_path / "wide_cloner.pt", MixFXCloner(ClonerConfig.tiny(cond_dim=32)))
    no_test = tmp_path / "no_test"
    (no_test / "train").mkdir(parents=True)
    one_song = tmp_path / "one_song"
    import shutil

    songs = sorted((Path(synth_root) / "test").iterdir())
    shutil.copytree(songs[0], one_song / "test" / songs[0].name)
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = tmp_path / "out"
    model = f"m={models['enc_a']},{models['cl_a']}"
    cases = [
        (["--data", synth_root, "--model", f"m={models['enc_a']},{wide}"], "conditioned on 32-d"),
        (["--data", synth_root, "--model", model, "--evaluator", models["cl_a"]], "expected an FXencoder"),
        (["--data", no_test], "test"),
        (["--data", one_song, "--reference", "other-song"], "other-song needs 2"),
        (["--data", synth_root, "--model", model, "--separator", tmp_path / "missing.pt"], "missing.pt"),
        (["--data", synth_root, "--model", "nolabel.pt"], "LABEL=ENCODER.pt,CLONER.pt"),
        (["--data", synth_root, "--examples", "1"], "--examples"),
    ]
    for args, needle in cases:
        code, text, err = run_cli(*args, "--out", out, "--seconds", "1.0")
        assert code == 1, (args, text, err)
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
        assert not out.exists(), args
    code, _, err = run_cli("--data", synth_root, "--out", afile)
    assert code == 1 and "not a folder" in err


def test_separated_stems_row_and_its_sdr(synth_root, models, tmp_path):
    pytest.importorskip("torchaudio")
    from torchaudio.models import HDemucs

    from mixeval.metrics.style import sdr_db as _sdr
    from mixeval.pipelines.table2 import ModelSpec, Table2Config, run_table2

    torch.manual_seed(0)
    weights = tmp_path / "hdemucs.pt"
    torch.save(HDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=2, nfft=64).eval().state_dict(), weights)
    cfg = Table2Config(evalset=TransferSetConfig(examples=2, seconds=1.0), batch_size=2, dsp_baseline=False,
                       bootstrap=100, device="cpu")
    res = run_table2(synth_root, tmp_path / "sep", models=[ModelSpec("Ψa", models["enc_a"], models["cl_a"])],
                     separator=weights, config=cfg)
    rows = list(res.examples["row"].unique())
    assert rows == ["Input", "oracle", "Ψa", "separated stems"]
    assert set(res.sdr) == {"multitrack", "stem"} and all(np.isfinite(v) for v in res.sdr.values())
    assert "SDR between outputs" in res.markdown
    # the SDR helper: a scaled copy is a perfect estimate under BSS-Eval; added noise lowers it by about its SNR
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 2, 20000, generator=g)
    noisy = ref + 0.1 * torch.randn(1, 2, 20000, generator=g)
    assert _sdr(ref, noisy)[0] == pytest.approx(20.0, abs=1.0)


def test_an_output_folder_in_use_is_refused(tmp_path):
    import os
    import subprocess
    import sys

    from mixeval.errors import MixevalError
    from mixeval.outputs import _lock_path, output_lock

    out = tmp_path / "busy"
    with output_lock(out):
        with pytest.raises(MixevalError, match="in use by another run"):
            with output_lock(out):
                pass
    assert not _lock_path(out).exists() and not out.exists()  # released; nothing left in the user's folders
    # a lock whose process has ended is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _lock_path(out).parent.mkdir(parents=True, exist_ok=True)
    _lock_path(out).write_text(dead.stdout.strip())
    with output_lock(out):
        assert _lock_path(out).read_text() == str(os.getpid())


def test_bootstrap_ci_matches_the_normal_approximation_and_wilcoxon_pairs():
    from mixeval.metrics.stats import bootstrap_mean_ci, wilcoxon_p

    v = np.random.default_rng(0).normal(3.0, 2.0, 400)
    lo, hi = bootstrap_mean_ci(v, resamples=2000, seed=1)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)  # textbook normal-approximation half-width
    assert lo < v.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_mean_ci(np.full(5, 2.0)) == (2.0, 2.0)
    a = np.arange(10.0)
    assert wilcoxon_p(a, a) == 1.0
    assert wilcoxon_p(a + 1.0, a) < 0.01  # every pair differs in the same direction


def test_measure_rows_gives_the_same_values_for_any_chunk_size(monkeypatch):
    import mixeval.pipelines.table2_measures as TM
    from mixfx import STEMS

    g = torch.Generator().manual_seed(11)
    n, t = 3, 44100
    gt = {s: 0.1 * torch.randn(n, 2, t, generator=g) for s in STEMS}
    ref = {s: 0.1 * torch.randn(n, 2, t, generator=g) for s in STEMS}
    outputs = {"Input": {s: 0.1 * torch.randn(n, 2, t, generator=g) for s in STEMS}, "oracle": gt,
               "half": {s: 0.5 * gt[s] for s in STEMS}}
    kwargs = dict(gt=gt, ref=ref, evaluator=None, device=torch.device("cpu"), batch_size=2, autocast=False)
    frames = {}
    for chunk_samples in (1, 2 * t, 10**9):  # one example per chunk, two, the whole case
        monkeypatch.setattr(TM, "CHUNK_SAMPLES", chunk_samples)
        frames[chunk_samples], _ = TM.measure_rows(outputs, list(outputs), **kwargs)
    for other in (2 * t, 10**9):
        pd.testing.assert_frame_equal(frames[1], frames[other], rtol=1e-9, atol=1e-12)
    ex = frames[1]
    # rows in order, each case's examples in order; the L_MSS columns equal lmss_terms on the whole case
    assert list(dict.fromkeys(ex["row"])) == ["Input", "oracle", "half"] and len(ex) == 3 * (n + 4 * n)
    stems = torch.cat([outputs["half"][s] for s in STEMS])
    want = lmss_terms(stems, torch.cat([gt[s] for s in STEMS]))["left_right"]
    got = ex[(ex["row"] == "half") & (ex["case"] == "stem")]["lmss_lr"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert (ex[ex["row"] == "oracle"][["lmss_lr", "rms_db", "loudness_lu"]].abs().to_numpy() < 1e-9).all()
