"""Issue 12: reference segments (``--reference-segments K``), stems and songs batched, one device move."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from mixfx.cli import app
from mixfx.errors import MixfxError
from mixfx.io.checkpoint import save_model_checkpoint
from mixfx.models import style_transfer as st_module
from mixfx.models.apply import reference_pieces
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.models.style_transfer import StyleTransfer
from mixfx.pipelines.transfer import TransferConfig, song_batches, transfer
from mixfx.pipelines.transfer_songs import list_songs

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")
SEG = 4096

torch.manual_seed(0)
ENCODER = FXEncoder(FXEncoderConfig.tiny()).eval()
CLONER = MixFXCloner(ClonerConfig.tiny(cond_dim=64)).eval()


def _encode(x: torch.Tensor) -> torch.Tensor:
    """The plain encoder on one clamped segment (references are clamped to [−1, 1])."""
    with torch.no_grad():
        return ENCODER(x.clamp(-1, 1)[None])[0]


def _reference(seed: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # white noise, then a low-passed (cumulative-sum) noise: different segments embed differently
    x = 0.3 * torch.randn(2, length, generator=g)
    half = length // 2
    x[:, half:] = 0.02 * torch.cumsum(x[:, half:], dim=-1)
    return x


# ----------------------------------------------------------------------------------------- reference segments


def test_reference_pieces_by_hand():
    assert reference_pieces(10, 4) == [(0, 4, 1.0), (4, 4, 1.0), (6, 4, 0.5)]
    assert reference_pieces(10, 4, 3) == reference_pieces(10, 4)  # K covers the reference: the full tiling
    assert reference_pieces(10, 4, 2) == [(0, 4, 1.0), (6, 4, 1.0)]
    assert reference_pieces(10, 4, 1) == [(3, 4, 1.0)]  # centre: (10 − 4) // 2
    assert reference_pieces(100, 10, 4) == [(0, 10, 1.0), (30, 10, 1.0), (60, 10, 1.0), (90, 10, 1.0)]
    assert reference_pieces(3, 4, 1) == [(0, 3, 1.0)]  # shorter than a segment: itself
    for bad in (0, -2, 1.5, True):
        with pytest.raises(MixfxError, match="reference segments must be an integer ≥ 1") as info:
            reference_pieces(10, 4, bad)
        assert "\n" not in str(info.value)


def test_k_covering_the_reference_gives_the_full_average_and_k1_differs():
    length = int(2.5 * SEG)  # pieces at 0, SEG (weight 1) and the tail piece ending at T (weight 0.5)
    ref = _reference(1, length)
    e0, e1, tail = _encode(ref[:, :SEG]), _encode(ref[:, SEG:2 * SEG]), _encode(ref[:, -SEG:])
    full = (e0 + e1 + 0.5 * tail) / 2.5
    for k in (3, 8, None):
        got = StyleTransfer(ENCODER, CLONER, reference_segment=SEG, reference_segments=k).embed(ref[None])[0]
        assert torch.allclose(got, full, atol=1e-5), k
    two = StyleTransfer(ENCODER, CLONER, reference_segment=SEG, reference_segments=2).embed(ref[None])[0]
    assert torch.allclose(two, (e0 + tail) / 2, atol=1e-5)  # first and last segment, equal weights
    one = StyleTransfer(ENCODER, CLONER, reference_segment=SEG, reference_segments=1).embed(ref[None])[0]
    centre = (length - SEG) // 2
    assert torch.allclose(one, _encode(ref[:, centre:centre + SEG]), atol=1e-5)
    assert (one - full).abs().mean() > 1e-4  # one segment is not the full average (float rounding is ~1e-7)


def test_stems_of_a_song_go_through_the_encoder_together(monkeypatch):
    calls = []
    forward = ENCODER.forward
    monkeypatch.setattr(ENCODER, "forward", lambda x: calls.append(x.shape[0]) or forward(x))
    stems = {s: _reference(k, 2 * SEG) for k, s in enumerate(STEMS)}
    got = StyleTransfer(ENCODER, CLONER, reference_segment=SEG).embed_stems(stems)
    assert calls == [4, 4]  # two segment offsets, all four stems per call
    for s in STEMS:
        expected = (_encode(stems[s][:, :SEG]) + _encode(stems[s][:, SEG:])) / 2
        assert torch.allclose(got[s], expected, atol=1e-5), s


def test_bad_reference_segments_are_one_line_errors(tmp_path):
    with pytest.raises(MixfxError, match="reference segments must be an integer ≥ 1"):
        StyleTransfer(ENCODER, CLONER, reference_segments=0)
    with pytest.raises(MixfxError, match="reference_segments must be an integer ≥ 1"):
        TransferConfig(reference_segments=-1)
    with pytest.raises(MixfxError, match="songs_per_batch"):
        TransferConfig(songs_per_batch=0)
    result = CliRunner().invoke(app, ["transfer", "-i", str(tmp_path), "-r", str(tmp_path), "-o", str(tmp_path / "o"),
                                      "-e", str(tmp_path / "e.pt"), "-c", str(tmp_path / "c.pt"),
                                      "--reference-segments", "-3"])
    assert result.exit_code == 1 and "--reference-segments must be ≥ 1" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


# ----------------------------------------------------------------------------------------- batching


def _write_song(folder, seed, frames):
    g = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for k, stem in enumerate(STEMS):
        sf.write(folder / f"{stem}.wav", (0.05 * (k + 1) * g.standard_normal((frames, 2))).astype(np.float32), SR,
                 subtype="FLOAT")
    return folder


def test_songs_of_one_length_are_converted_in_one_batch(tmp_path, monkeypatch):
    for name, seed, frames in (("a", 1, 5000), ("b", 2, 6000), ("c", 3, 5000), ("d", 4, 5000)):
        _write_song(tmp_path / "in" / name, seed, frames)
    ref = _write_song(tmp_path / "ref", 9, 7000)
    songs = list_songs(tmp_path / "in")
    assert [[s.name for s in g] for g in song_batches(songs, 2)] == [["a", "c"], ["b"], ["d"]]
    enc = save_model_checkpoint(tmp_path / "enc.pt", ENCODER)
    cl = save_model_checkpoint(tmp_path / "cl.pt", CLONER)
    rows = []
    convert = StyleTransfer.convert
    monkeypatch.setattr(StyleTransfer, "convert", lambda self, x, e, progress=None: rows.append(x.shape[0])
                        or convert(self, x, e, progress=progress))
    results = transfer(tmp_path / "in", ref, tmp_path / "out", encoder=enc, cloner=cl, device="cpu",
                       config=TransferConfig(songs_per_batch=4, min_seconds=0.1))
    assert [r.song for r in results] == ["a", "b", "c", "d"]
    assert sorted(rows) == [4, 12]  # b alone; a, c and d (same length) as 12 rows of one call
    # each song equals the plain module on its own stems
    emb = {s: _encode(torch.from_numpy(sf.read(str(ref / f"{s}.wav"), dtype="float32")[0].T.copy())) for s in STEMS}
    for r in results:
        for s in STEMS:
            x = torch.from_numpy(sf.read(str(tmp_path / "in" / r.song / f"{s}.wav"), dtype="float32")[0].T.copy())
            with torch.no_grad():
                expected = CLONER(x[None], emb[s][None])[0]
            got = torch.from_numpy(sf.read(str(r.folder / f"{s}.wav"), dtype="float32")[0].T.copy())
            assert torch.allclose(got, expected, atol=1e-5), (r.song, s)


def test_convert_moves_audio_to_the_network_device_once_not_per_tile(monkeypatch):
    """Structure check on a CPU: the number of audio ``.to`` / ``.cpu`` calls does not grow with the
    number of tiles (on CUDA each such call would be a host ↔ device copy). A float64 input stands
    in for audio on the host: had ``convert`` not moved it once, every tile would need a conversion."""
    x = 0.2 * torch.randn(3, 2, 6000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    e = torch.randn(3, 64, generator=torch.Generator().manual_seed(5))
    to, cpu = torch.Tensor.to, torch.Tensor.cpu
    moves: list[int] = []

    def counted(method):
        def call(self, *args, **kwargs):
            if self.ndim == 3 and self.shape[-1] >= 64:  # audio (a tile or more), not embeddings or FiLM
                moves.append(self.numel())
            return method(self, *args, **kwargs)
        return call

    monkeypatch.setattr(torch.Tensor, "to", counted(to))
    monkeypatch.setattr(torch.Tensor, "cpu", counted(cpu))
    counts = {}
    for budget in (2**22, 2**26):  # small budget → short tiles (many), large → one tile
        model = StyleTransfer(None, CLONER, max_memory=budget)
        monkeypatch.setattr(st_module, "tile_for_memory", lambda *a, **k: 64 if budget == 2**22 else 6000)
        moves.clear()
        y = model.convert(x, e)
        counts[budget] = len(moves)
    assert counts[2**22] == counts[2**26] <= 4, counts
    monkeypatch.undo()
    with torch.no_grad():
        assert torch.allclose(y, CLONER(x.float(), e), atol=1e-5)


def test_bf16_precision_is_close_to_fp32_and_leaves_the_model_alone():
    x = 0.2 * torch.randn(2, 2, 3000, generator=torch.Generator().manual_seed(6))
    e = torch.randn(2, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        exact = CLONER(x, e)
    for overlap in (None, 0.5):
        model = StyleTransfer(None, CLONER, precision="bf16", overlap=overlap, segment=1000)
        y = model.convert(x, e)
        assert y.dtype == torch.float32 and next(CLONER.parameters()).dtype == torch.float32
        err = float((y - exact).abs().max())
        assert 0 < err < 0.05, (overlap, err)  # bf16 really ran (not bit-exact), and stays close
    with pytest.raises(MixfxError, match="precision must be fp32 or bf16"):
        StyleTransfer(None, CLONER, precision="fp16")
    with pytest.raises(MixfxError, match="precision must be fp32 or bf16"):
        TransferConfig(precision="int8")
