"""Style-transfer library (issue 3, inference): seamless windows, conditioning, separation, songs, outputs.

The CLI end to end is in ``test_transfer_cli.py``; these tests check the library functions against
direct computations with the models.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from mixfx.errors import MixfxError
from mixfx.io.checkpoint import save_model_checkpoint
from mixfx.models.apply import apply_with_context, cloner_context
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.models.loading import load_cloner as load_official_cloner
from mixfx.models.style_transfer import StyleTransfer, interpolate_embeddings
from mixfx.pipelines.transfer import TransferConfig, transfer
from mixfx.pipelines.transfer_songs import as_song, list_songs, load_stems, match_references

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")


def _randomize_batchnorm(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


def write_stems(folder, seed, seconds=1.2, *, rate=SR, channels=2, silent=()):
    """Four stems with different levels and spectra (so a stem/reference mix-up changes the output)."""
    g = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    for k, stem in enumerate(STEMS):
        x = g.standard_normal((n, channels)) * 0.05 * (k + 1)
        x = np.cumsum(x, axis=0) * 0.003 if k == 1 else x  # a low-passed "bass" (peak below 1)
        if stem in silent:
            x = np.zeros_like(x)
        sf.write(folder / f"{stem}.wav", x.astype(np.float32), rate, subtype="FLOAT")
    return folder


def read(path):
    return torch.from_numpy(sf.read(str(path), dtype="float32", always_2d=True)[0].T.copy())


def encode(enc, x):
    """The plain encoder on one clamped piece ``(2, n)`` (references are clamped, as in the official code)."""
    with torch.no_grad():
        return enc(x.clamp(-1, 1)[None])[0]


def convert(cl, x, e):
    """The plain cloner forward on one whole stem: the independent expectation of every conversion."""
    with torch.no_grad():
        return cl(x[None], e[None])[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer_lib")
    torch.manual_seed(0)
    enc = _randomize_batchnorm(FXEncoder(FXEncoderConfig.tiny()), 1)
    cl = _randomize_batchnorm(MixFXCloner(ClonerConfig.tiny(cond_dim=64)), 2)
    paths = {"enc": save_model_checkpoint(root / "enc.pt", enc), "cl": save_model_checkpoint(root / "cl.pt", cl),
             "in": write_stems(root / "song", 1), "a": write_stems(root / "refA", 2), "b": write_stems(root / "refB", 3)}
    return root, enc, cl, paths


# ----------------------------------------------------------------------------------------- windows


def test_context_windows_reproduce_one_pass_of_the_loaded_cloner(env):
    root, _, _, paths = env
    cloner = load_official_cloner(paths["cl"])  # the real loading path
    reach = cloner_context(cloner)
    assert reach == (cloner.receptive_field() - 1) // 2  # symmetric non-causal TCN
    g = torch.Generator().manual_seed(5)
    stems = {s: 0.2 * torch.randn(2, 5000, generator=g) for s in ("drums", "vocals")}
    emb = {s: torch.rand(64, generator=g) for s in stems}
    with torch.no_grad():
        full = {s: cloner(stems[s][None], emb[s][None])[0] for s in stems}
    for segment, batch in ((1000, 1), (1000, 3), (4 * reach, 2), (4999, 1), (5000, 1), (9000, 2)):
        y = StyleTransfer(None, cloner, segment=segment, batch_size=batch).convert_stems(stems, emb)
        for s in stems:
            assert torch.allclose(y[s], full[s], atol=2e-6), (segment, batch, (y[s] - full[s]).abs().max())


def test_apply_with_context_core_layout_and_progress():
    # fn = moving sum over ±3 samples (reach 3): exact for any window > 6
    def fn(c, i):
        k = torch.ones(c.shape[1], 1, 7, dtype=c.dtype)
        return torch.nn.functional.conv1d(c, k, padding=3, groups=c.shape[1])

    x = torch.randn(2, 3, 101, dtype=torch.float64)
    calls = []
    for window in (7, 8, 20, 101, 500):
        y = apply_with_context(fn, x, window=window, context=3, batch_size=3,
                               progress=lambda *call: calls.append(call))
        assert torch.allclose(y, fn(x, None), atol=1e-12)
        assert calls[-1][0] == calls[-1][1] and {c[2] for c in calls} == {"windows"}
    with pytest.raises(MixfxError, match="no core"):
        apply_with_context(fn, x, window=6, context=3)


def test_cross_faded_windows_have_no_clicks_unlike_hard_joins(env):
    """With overlap (cross-fade), joins stay as smooth as one pass; non-overlapping chunks jump."""
    _, _, cloner, _ = env
    t = torch.arange(12000) / SR
    x = {"other": 0.3 * torch.sin(2 * torch.pi * 220 * t).expand(2, -1).clone()}
    e = {"other": torch.rand(64, generator=torch.Generator().manual_seed(6))}
    with torch.no_grad():
        full = cloner(x["other"][None], e["other"][None])[0]
        hard = torch.cat([cloner(c[None], e["other"][None])[0] for c in x["other"].split(1000, dim=-1)], dim=-1)
    faded = StyleTransfer(None, cloner, segment=1000, overlap=0.5).convert_stems(x, e)["other"]
    jump = lambda y: (y - full).diff(dim=-1).abs().max()  # noqa: E731 - step of the error between neighbours
    assert jump(hard) > 20 * jump(faded)  # hard joins click; the cross-fade does not
    assert faded.diff(dim=-1).abs().max() <= 1.05 * full.diff(dim=-1).abs().max()


# ----------------------------------------------------------------------------------------- conditioning


def test_each_stem_is_conditioned_on_the_same_stem_of_the_reference(env, tmp_path):
    root, enc, cl, paths = env
    [res] = transfer(paths["in"], paths["a"], tmp_path, encoder=paths["enc"], cloner=paths["cl"], device="cpu",
                     config=TransferConfig(segment=8192, reference_segment=20000))
    assert not res.skipped and res.folder == tmp_path / "song"
    record = json.loads((res.folder / "transfer.json").read_text())
    assert record["alpha"] is None and record["config"]["segment"] == 8192
    total = 0
    for stem in STEMS:
        x = read(paths["in"] / f"{stem}.wav")
        ref = read(paths["a"] / f"{stem}.wav")
        assert ref.shape[-1] == 52920  # pieces [0, 20000), [20000, 40000) and the tail [32920, 52920)
        tail = (52920 - 40000) / 20000  # the tail piece counts for the share of new samples it adds
        e = (encode(enc, ref[:, :20000]) + encode(enc, ref[:, 20000:40000]) + tail * encode(enc, ref[:, -20000:]))
        e = e / (2 + tail)
        expected = convert(cl, x, e)
        got = read(res.folder / f"{stem}.wav")
        assert got.shape == x.shape
        assert torch.allclose(got, expected, atol=1e-5), stem
        total = total + got
    assert torch.allclose(read(res.folder / "mixture.wav"), total, atol=1e-5)
    assert res.peak_db == pytest.approx(20 * np.log10(float(total.abs().max())), abs=1e-3)


def test_interpolation_is_linear_in_alpha():
    a = {"drums": torch.tensor([1.0, 2.0])}
    b = {"drums": torch.tensor([3.0, -2.0])}
    assert torch.equal(interpolate_embeddings(a, b, 0.0)["drums"], a["drums"])
    assert torch.equal(interpolate_embeddings(a, b, 1.0)["drums"], b["drums"])
    assert torch.allclose(interpolate_embeddings(a, b, 0.25)["drums"], torch.tensor([1.5, 1.0]))
    for bad in (-0.1, 1.5):
        with pytest.raises(MixfxError, match=r"\[0, 1\]"):
            interpolate_embeddings(a, b, bad)


def test_fx_normalization_of_the_input_only(env, tmp_path):
    from mixfx.fxnorm.targets import FXNormFeatures

    root, enc, cl, paths = env
    bins = 65536 // 2 + 1
    f = FXNormFeatures(eq={s: np.linspace(2.0, 0.5, bins) for s in STEMS}, compression={s: (-14.0, 2.0) for s in STEMS},
                       imager={s: 0.8 for s in STEMS}, panning={s: 0.5 for s in STEMS},
                       loudness={s: -20.0 - 2 * k for k, s in enumerate(STEMS)})
    features = f.save(tmp_path / "features.npz")
    cfg = TransferConfig(segment=2**16)
    [res] = transfer(paths["in"], paths["a"], tmp_path / "out", encoder=paths["enc"], cloner=paths["cl"],
                     features=features, device="cpu", config=cfg)
    stems = load_stems(as_song(paths["in"]))
    from mixfx.fxnorm.matching import normalize_stem
    from mixfx.fxnorm.matching import stem_rng

    normalized = {s: normalize_stem(x, s, f.smoothed(), rng=stem_rng(cfg.seed, "song", s),
                                    effects=cfg.effects).clamp(-1, 1) for s, x in stems.items()}
    emb = {s: encode(enc, read(paths["a"] / f"{s}.wav")) for s in STEMS}  # shorter than one 2^19 segment
    expected = {s: convert(cl, normalized[s], emb[s]) for s in STEMS}
    for s in STEMS:
        assert torch.allclose(read(res.folder / f"{s}.wav"), expected[s], atol=1e-5), s
    # the normalized input reached its loudness target, so normalization really ran
    from mixfx.fx.loudness import integrated_loudness

    assert float(integrated_loudness(normalized["drums"][None], SR)[0]) == pytest.approx(-20.0, abs=0.5)


# ----------------------------------------------------------------------------------------- outputs


def test_peak_scaling_silent_stems_skip_and_progress(env, tmp_path):
    root, _, _, paths = env
    song = write_stems(tmp_path / "in" / "quiet", 7, silent=("vocals",))
    write_stems(tmp_path / "in" / "other_song", 8, seconds=1.5, rate=22050, channels=1)  # mono, resampled
    calls = []
    progress = lambda *call: calls.append(call)  # noqa: E731
    results = transfer(tmp_path / "in", paths["a"], tmp_path / "out", encoder=paths["enc"], cloner=paths["cl"],
                       device="cpu", config=TransferConfig(segment=8192, peak_db=-3.0), progress=progress)
    assert [r.song for r in results] == ["other_song", "quiet"]
    # milliseconds of audio, 1.5 s + 1.2 s, counted up to the total
    assert calls[-1] == (2700, 2700, "transfer") and all(c[1:] == (2700, "transfer") for c in calls)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    for r in results:
        mix = read(r.folder / "mixture.wav")
        assert float(mix.abs().max()) == pytest.approx(10 ** (-3 / 20), rel=1e-5)
        assert torch.allclose(sum(read(r.folder / f"{s}.wav") for s in STEMS), mix, atol=1e-5)
    assert read(results[0].folder / "drums.wav").shape == (2, int(1.5 * SR))
    assert not torch.any(read(results[1].folder / "vocals.wav"))  # a silent input stem stays silent
    # existing outputs are skipped (resumable), redone with overwrite
    again = transfer(tmp_path / "in", paths["a"], tmp_path / "out", encoder=paths["enc"], cloner=paths["cl"],
                     device="cpu", config=TransferConfig(segment=8192))
    assert all(r.skipped for r in again)
    redo = transfer(song, paths["a"], tmp_path / "out", encoder=paths["enc"], cloner=paths["cl"], device="cpu",
                    config=TransferConfig(segment=8192), overwrite=True)
    assert not redo[0].skipped and abs(redo[0].peak_db - (-3.0)) > 1e-3


# ----------------------------------------------------------------------------------------- songs


def test_song_discovery_and_reference_matching(tmp_path):
    write_stems(tmp_path / "songs" / "a", 1, seconds=0.1)
    mix_only = tmp_path / "songs" / "b"
    mix_only.mkdir()
    sf.write(mix_only / "mixture.wav", np.zeros((100, 2), np.float32), SR)
    sf.write(tmp_path / "songs" / "c.flac", np.zeros((100, 2), np.float32), SR)
    songs = list_songs(tmp_path / "songs")
    assert [(s.name, s.stems is not None) for s in songs] == [("a", True), ("b", False), ("c", False)]
    # references: one for all, or same-named songs
    assert {k: v.name for k, v in match_references(tmp_path / "songs" / "a", songs).items()} == {"a": "a", "b": "a", "c": "a"}
    assert all(k == v.name for k, v in match_references(tmp_path / "songs", songs).items())
    write_stems(tmp_path / "refs" / "a", 2, seconds=0.1)
    write_stems(tmp_path / "refs" / "zzz", 2, seconds=0.1)
    with pytest.raises(MixfxError, match="no reference for song.*b, c"):
        match_references(tmp_path / "refs", songs)
    partial = tmp_path / "partial"
    write_stems(partial, 3, seconds=0.1)
    (partial / "vocals.wav").unlink()
    with pytest.raises(MixfxError, match=r"missing stem\(s\) vocals; .*\(\.wav/\.flac/\.ogg/"):
        as_song(partial)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixfxError, match="no songs found"):
        list_songs(tmp_path / "empty")
    with pytest.raises(MixfxError, match="is a mixture: pass --separator-weights"):
        load_stems(songs[1])


def test_bad_settings_and_inputs_raise_one_line_errors(env, tmp_path):
    root, _, _, paths = env
    kw = dict(encoder=paths["enc"], cloner=paths["cl"], device="cpu")
    short = write_stems(tmp_path / "short", 4, seconds=0.5)
    cases = [
        (lambda: transfer(short, paths["a"], tmp_path / "o", **kw), "too short"),
        (lambda: transfer(paths["in"], paths["a"], tmp_path / "o", alpha=0.5, **kw), "second reference"),
        (lambda: transfer(paths["in"], paths["a"], tmp_path / "o", reference_b=paths["b"], alpha=2.0, **kw), r"\[0, 1\]"),
        (lambda: transfer(root, paths["a"], root / "out", **kw), "must not be inside the input"),
        (lambda: transfer(paths["in"], tmp_path / "nope", tmp_path / "o", **kw), "no such file"),
        (lambda: TransferConfig(overlap=1.0), "overlap"),
        (lambda: TransferConfig(subtype="MP3"), "subtype"),
        (lambda: TransferConfig(peak_db=3.0), "peak_db"),
    ]
    (root / "junk.pt").write_bytes(b"not a checkpoint")
    cases.append((lambda: transfer(paths["in"], paths["a"], tmp_path / "o", encoder=root / "junk.pt",
                                   cloner=paths["cl"], device="cpu"), "junk.pt"))
    for fn, message in cases:
        with pytest.raises(MixfxError, match=message) as info:
            fn()
        assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------- separation


def _tiny_hdemucs():
    from torchaudio.models import HDemucs

    torch.manual_seed(0)
    return HDemucs(sources=list(STEMS), channels=4, depth=2, nfft=64).eval()


def test_separator_infers_the_architecture_and_matches_the_model(tmp_path):
    pytest.importorskip("torchaudio")
    from torchaudio.models import hdemucs_high

    from mixfx.models.separation import infer_config, load_separator

    high = infer_config(hdemucs_high(list(STEMS)).state_dict())
    assert (high.channels, high.depth, high.nfft, high.growth, high.sources) == (48, 6, 4096, 2, STEMS)
    model = _tiny_hdemucs()
    weights = tmp_path / "tiny.pt"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, weights)  # DDP-style file
    sep = load_separator(weights, segment_seconds=1.0)
    assert (sep.window, sep.sources) == (SR, STEMS)
    x = 0.1 * torch.randn(2, SR // 2, generator=torch.Generator().manual_seed(1)) + 0.01
    stems = sep.separate(x)
    # one window: the model on the standardized mono-referenced mixture, scaled back
    mono = x.double().mean(0)
    mean, std = float(mono.mean()), float(mono.std())
    with torch.no_grad():
        direct = model(((x - mean) / std)[None])[0] * std + mean / 4
    for k, s in enumerate(STEMS):
        assert stems[s].shape == (2, SR // 2)
        assert torch.allclose(stems[s], direct[k], atol=1e-5)
    # standardization makes separation scale-equivariant; long inputs go through windows
    doubled = sep.separate(2 * x)
    assert all(torch.allclose(doubled[s], 2 * stems[s], atol=1e-5) for s in STEMS)
    long = sep.separate(0.1 * torch.randn(2, int(2.3 * SR)))
    assert all(v.shape == (2, int(2.3 * SR)) and torch.isfinite(v).all() for v in long.values())
    with pytest.raises(MixfxError, match="4 outputs, but 2 source names"):
        load_separator(weights, sources=("a", "b"))


def test_separator_errors_without_torchaudio_or_with_wrong_weights(env, tmp_path, monkeypatch):
    pytest.importorskip("torchaudio")
    from mixfx.models.separation import load_separator

    _, _, _, paths = env
    with pytest.raises(MixfxError, match="not a torchaudio HDemucs state_dict"):
        load_separator(paths["enc"])
    with pytest.raises(MixfxError, match="checkpoint file not found"):
        load_separator(tmp_path / "missing.pt")
    weights = tmp_path / "tiny.pt"
    torch.save(_tiny_hdemucs().state_dict(), weights)
    monkeypatch.setitem(sys.modules, "torchaudio.models", None)  # as if torchaudio were not installed
    with pytest.raises(MixfxError, match=r"mixfx\[separation\]"):
        load_separator(weights)


def test_mixture_input_and_reference_are_separated_in_the_pipeline(env, tmp_path):
    pytest.importorskip("torchaudio")
    from mixfx.models.separation import load_separator

    root, enc, cl, paths = env
    weights = tmp_path / "tiny.pt"
    torch.save(_tiny_hdemucs().state_dict(), weights)
    mixture = sum(read(paths["in"] / f"{s}.wav") for s in STEMS)
    sf.write(tmp_path / "song.wav", mixture.T.numpy(), SR, subtype="FLOAT")
    ref_mix = sum(read(paths["a"] / f"{s}.wav") for s in STEMS)
    sf.write(tmp_path / "ref.wav", ref_mix.T.numpy(), SR, subtype="FLOAT")
    calls = []
    cfg = TransferConfig(segment=8192)
    [res] = transfer(tmp_path / "song.wav", tmp_path / "ref.wav", tmp_path / "out", encoder=paths["enc"],
                     cloner=paths["cl"], separator_weights=weights, device="cpu", config=cfg,
                     progress=lambda *call: calls.append(call))
    ms = round(2000 * mixture.shape[-1] / SR)  # separation + conversion, in milliseconds of audio
    assert calls[-1] == (ms, ms, "transfer")
    sep = load_separator(weights)
    stems = sep.separate(mixture)
    ref = sep.separate(ref_mix)
    emb = {s: encode(enc, ref[s]) for s in STEMS}  # shorter than one 2^19 segment: the whole stem
    expected = {s: convert(cl, stems[s], emb[s]) for s in STEMS}
    for s in STEMS:
        assert torch.allclose(read(res.folder / f"{s}.wav"), expected[s], atol=1e-5), s
