"""Training: exact resumption, probability scheduling, loss going down, DDP with 2 CPU processes."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import pytest
import torch

from mixfx.errors import MixfxError
from mixfx.fx.chain import FXManipulator
from mixfx.fx.params import FXProbabilities
from mixfx.losses.contrastive import nt_xent
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.pipelines.train_cloner import train_cloner
from mixfx.pipelines.train_encoder import train_encoder
from mixfx.train.batches import ContrastiveSegments, contrastive_views, step_generator
from mixfx.train.config import ClonerTrainConfig, EncoderTrainConfig
from mixfx.train.schedule import losses_to_probabilities, scheduled_probabilities
from mixfx.data.musdb import MultitrackSegments

TINY = dict(contents=2, seconds=(0.5, 1.0), steps=6, val_every=3, checkpoint_every=3, log_every=1, d0=32)


def rows(run, kind="train", name="loss"):
    with open(run / "metrics.csv") as f:
        return [(int(r["step"]), float(r["value"])) for r in csv.DictReader(f) if r["kind"] == kind and r["name"] == name]


def test_resumed_run_gives_the_same_losses(synth_root, tmp_path):
    config = EncoderTrainConfig.tiny(variant="ps", **TINY)
    full = tmp_path / "full"
    train_encoder(synth_root, full, config, device="cpu", allow_unnormalized=True)
    part = tmp_path / "part"
    train_encoder(synth_root, part, config, device="cpu", allow_unnormalized=True, stop_after=3)
    assert [s for s, _ in rows(part)] == [1, 2, 3]
    with pytest.raises(MixfxError, match="--resume"):
        train_encoder(synth_root, part, config, device="cpu", allow_unnormalized=True)
    train_encoder(synth_root, part, config, device="cpu", allow_unnormalized=True, resume=True)
    assert rows(part) == rows(full)
    assert rows(part, "valid", "p_pan") == rows(full, "valid", "p_pan")  # scheduled probabilities too
    # the logged schedule: every effect at every validation, in [0.1, 1]; while the per-FX losses lie within
    # 2 % of the chance loss ln(2·4 − 1) of each other (hand rule) the probabilities stay as they were
    # (the official defaults before the first update)
    names = ("eq", "compressor", "pan", "imager", "reverb", "gain")
    steps = [s for s, _ in rows(full, "valid", "p_eq")]
    assert steps and all([s for s, _ in rows(full, "valid", f"p_{fx}")] == steps for fx in names)
    previous = {"eq": 0.9, "compressor": 0.9, "pan": 0.3, "imager": 0.8, "reverb": 0.9, "gain": 0.5}
    for i, step in enumerate(steps):
        p = {fx: rows(full, "valid", f"p_{fx}")[i][1] for fx in names}
        losses = [rows(full, "valid", f"loss_{fx}")[i][1] for fx in names]
        assert all(0.1 - 1e-6 <= v <= 1.0 + 1e-6 for v in p.values())
        if (max(losses) - min(losses)) / math.log(7) < 0.02:
            assert p == pytest.approx(previous)
        previous = p
    other = EncoderTrainConfig.tiny(variant="ps", **{**TINY, "steps": 8})
    with pytest.raises(MixfxError, match="another configuration"):
        train_encoder(synth_root, part, other, device="cpu", allow_unnormalized=True, resume=True)
    for name in ("config.json", "git_revision.txt", "checkpoints/step_0000003.pt", "checkpoints/last.pt"):
        assert (full / name).is_file()


def test_normalized_variants_require_normalized_data(synth_root, tmp_path):
    with pytest.raises(MixfxError, match="fx-normalize"):
        train_encoder(synth_root, tmp_path / "r", EncoderTrainConfig.tiny(variant="norm"), device="cpu")


def test_probability_mapping():
    # losses spread over ≥ 0.25 of the chance loss (4.0): the min–max map onto [0.1, 1]
    p = losses_to_probabilities({"eq": 2.0, "pan": 1.0, "gain": 1.5}, chance_loss=4.0)
    assert p == pytest.approx({"eq": 1.0, "pan": 0.1, "gain": 0.55})
    assert losses_to_probabilities({"a": 1.0, "b": 1.0}, chance_loss=4.0) == {"a": 0.55, "b": 0.55}
    losses = {"eq": 3.0, "compressor": 2.0, "pan": 1.0, "imager": 1.5, "reverb": 2.5, "gain": 1.2}
    probs = scheduled_probabilities(FXProbabilities(), losses, chance_loss=4.0)
    assert probs.eq == pytest.approx(1.0) and probs.pan == pytest.approx(0.1)
    assert probs.reverb["vocals"] == pytest.approx(0.1 + 0.9 * 1.5 / 2) and probs.reverb["drums"] == pytest.approx(probs.reverb["vocals"] / 2)


def test_contrastive_batch_structure(synth_root):
    data = MultitrackSegments(synth_root, "train")
    batches = ContrastiveSegments(data, contents=3, seconds=(0.5, 1.0), seed=0)
    for step in range(4):
        raw = batches[step]
        assert len(raw.stems) == step % 4 + 1  # the paper's iteration: 1…4-stem mixes
        assert raw.a.shape[:2] == raw.b.shape[:2] == (len(raw.stems), 3)
    raw = batches[0]
    assert torch.equal(raw.a, batches[0].a)  # a pure function of the step
    chain = FXManipulator()
    va, vb = contrastive_views(raw, chain, step_generator(0, 0, stream=7))
    assert va.shape[0] == vb.shape[0] == 6
    # items 2j and 2j+1 share content but not FX: they differ; the two views of one pair share FX, not content
    assert not torch.allclose(va[0], va[1])


def test_encoder_learns_a_fixed_batch():
    """Gradients flow: a few Adam steps on one batch lower the NT-Xent loss clearly."""
    torch.manual_seed(0)
    model = FXEncoder(FXEncoderConfig.tiny())
    g = torch.Generator().manual_seed(0)
    chain = FXManipulator()
    content = 0.1 * torch.randn(8, 2, 8192, generator=g)
    other = 0.1 * torch.randn(8, 2, 8192, generator=g)
    config = chain.sample(8, generator=g, stems="other")
    va, vb = chain.apply(content, config), chain.apply(other, config)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = nt_xent(model(va), model(vb), d0=32)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_cloner_training_runs_and_resumes(synth_root, tmp_path):
    enc_cfg = EncoderTrainConfig.tiny(variant="none", **{**TINY, "steps": 2, "val_every": 2, "checkpoint_every": 2})
    enc = train_encoder(synth_root, tmp_path / "enc", enc_cfg, device="cpu")
    cfg = ClonerTrainConfig.tiny(batch=2, seconds=0.5, steps=4, val_every=2, checkpoint_every=2, log_every=1)
    train_cloner(synth_root, enc, tmp_path / "full", cfg, device="cpu")
    train_cloner(synth_root, enc, tmp_path / "part", cfg, device="cpu", stop_after=2)
    train_cloner(synth_root, enc, tmp_path / "part", cfg, device="cpu", resume=True)
    assert rows(tmp_path / "part") == rows(tmp_path / "full")
    assert [s for s, _ in rows(tmp_path / "full", "valid", "mid_side")] == [0, 2, 4]  # untrained baseline, then every 2 steps


def test_ddp_two_cpu_processes(synth_root, tmp_path):
    """torchrun with 2 processes and the gloo backend trains and checkpoints once (rank 0)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mixfx.cli", "-q",
           "train-encoder", str(synth_root), "-r", str(tmp_path / "ddp"), "--variant", "none", "--steps", "2",
           "--contents", "1", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "ddp" / "checkpoints" / "last.pt").is_file()
    assert len(rows(tmp_path / "ddp")) >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_with_bf16_autocast(synth_root, tmp_path):
    """Both trainers on CUDA: the FX chain on the GPU, bf16 autocast, finite losses, checkpoints."""
    enc_cfg = EncoderTrainConfig.tiny(variant="ps", amp=True, **{**TINY, "steps": 4, "val_every": 2, "checkpoint_every": 2})
    enc = train_encoder(synth_root, tmp_path / "enc", enc_cfg, device="cuda", allow_unnormalized=True)
    losses = [v for _, v in rows(tmp_path / "enc")]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    cfg = ClonerTrainConfig.tiny(batch=2, seconds=0.5, steps=3, val_every=3, checkpoint_every=3, log_every=1, amp=True)
    last = train_cloner(synth_root, enc, tmp_path / "cloner", cfg, device="cuda")
    assert last.is_file()
    assert all(torch.isfinite(torch.tensor([v for _, v in rows(tmp_path / "cloner")])))
