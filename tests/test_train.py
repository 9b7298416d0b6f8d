"""Training: exact resumption, probability scheduling, loss going down, DDP with 2 CPU processes."""

from __future__ import annotations

import csv
import functools
import json
import os
import subprocess
import sys

import numpy as np
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


def test_resumed_run_gives_the_same_losses_and_schedule(synth_root, tmp_path, monkeypatch):
    """Probability scheduling over the whole [0.1, 1] range, used by training, and reproduced on resume.

    A 6-step run's per-FX losses lie far inside the default dead band (2 % of the chance loss), so the
    default rule would never move a probability. Here the trainer's rule runs with ``min_spread=0`` and
    a vanishing ``full_spread``: any spread then maps min–max onto [0.1, 1] (mixfx.train.schedule, step 3),
    so every validation must put the easiest effect at 0.1 and the hardest at 1.0.
    """
    from mixfx.pipelines import train_encoder as trainer

    rule = functools.partial(scheduled_probabilities, min_spread=0.0, full_spread=1e-12)
    monkeypatch.setattr(trainer, "scheduled_probabilities", rule)
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
    names = ("eq", "compressor", "pan", "imager", "reverb", "gain")
    for fx in names:  # scheduled probabilities and per-FX losses too
        assert rows(part, "valid", f"p_{fx}") == rows(full, "valid", f"p_{fx}")
        assert rows(part, "valid", f"loss_{fx}") == rows(full, "valid", f"loss_{fx}")
    weights = [torch.load(run / "checkpoints" / "last.pt", weights_only=False)["state_dict"] for run in (full, part)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # bit-exact, no RNG state restored
    steps = [s for s, _ in rows(full, "valid", "p_eq")]
    assert steps == [0, 3, 6]
    for i in range(len(steps)):
        p = {fx: rows(full, "valid", f"p_{fx}")[i][1] for fx in names}
        losses = {fx: rows(full, "valid", f"loss_{fx}")[i][1] for fx in names}
        assert all(0.1 - 1e-6 <= v <= 1.0 + 1e-6 for v in p.values())
        assert p[min(losses, key=losses.get)] == pytest.approx(0.1, abs=1e-5)  # easiest effect: p_min
        assert p[max(losses, key=losses.get)] == pytest.approx(1.0, abs=1e-5)  # hardest effect: p_max
    # the schedule is used: after the step-0 update the draws (hence the losses) leave those of fixed probabilities
    fixed = tmp_path / "fixed"
    train_encoder(synth_root, fixed, EncoderTrainConfig.tiny(variant="norm", **TINY), device="cpu",
                  allow_unnormalized=True, stop_after=1)
    assert rows(fixed)[0][1] != rows(full)[0][1]
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
    """Row i = j·k + c of both views: content pair j under configuration c, summed over the batch's stems.

    Recomputed row by row from the raw batch: the configurations are drawn as contrastive_views draws
    them (one per stem, in order, from the same generator), and row i of view A and of view B must be
    ``Σ_s chain(raw.a[s, j])`` and ``Σ_s chain(raw.b[s, j])`` under that same configuration i.
    """
    data = MultitrackSegments(synth_root, "train")
    batches = ContrastiveSegments(data, contents=3, seconds=(0.5, 1.0), seed=0)
    for step in range(4):
        raw = batches[step]
        assert len(raw.stems) == step % 4 + 1  # the paper's iteration: 1…4-stem mixes
        assert raw.a.shape[:2] == raw.b.shape[:2] == (len(raw.stems), 3)
    assert torch.equal(batches[1].a, batches[1].a) and torch.equal(batches[1].b, batches[1].b)  # pure in the step
    chain, k = FXManipulator(), 2
    for step in (0, 1):  # one stem, then a sum of two
        raw = batches[step]
        va, vb = contrastive_views(raw, chain, step_generator(0, step, stream=7), configs_per_content=k)
        assert va.shape == (6, 2, raw.a.shape[-1]) and vb.shape == (6, 2, raw.b.shape[-1])
        g = step_generator(0, step, stream=7)
        configs = [chain.sample(6, generator=g, stems=stem) for stem in raw.stems]
        for i in range(6):
            j = i // k  # content pair j, configuration i % k
            row_a = sum(chain.apply(raw.a[s, j][None], configs[s].select([i]))[0] for s in range(len(raw.stems)))
            row_b = sum(chain.apply(raw.b[s, j][None], configs[s].select([i]))[0] for s in range(len(raw.stems)))
            assert torch.allclose(va[i], row_a, atol=1e-5), (step, i)  # positive pair: the same configuration i
            assert torch.allclose(vb[i], row_b, atol=1e-5), (step, i)
        for j in range(3):  # the two rows of a content differ: same content, other configuration
            assert not torch.allclose(va[k * j], va[k * j + 1])


def test_step_generator_is_a_seedsequence_stream():
    expected = int(np.random.SeedSequence([3, 5, 1, 7]).generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)
    assert step_generator(3, 5, 1, 7).initial_seed() == expected
    # the former hand mixing, ((seed·1000003 + step)·1009 + rank·101 + stream), gave these two one stream
    assert step_generator(0, 0, 1, 0).initial_seed() != step_generator(0, 0, 0, 101).initial_seed()
    with pytest.raises(MixfxError, match="non-negative"):
        step_generator(-1, 0)
    with pytest.raises(MixfxError, match="--seed"):
        EncoderTrainConfig.tiny(seed=-1)


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


def test_cloner_level_weight_adds_the_logged_level_error(synth_root, tmp_path):
    """``level_weight`` w: the same step's loss grows by exactly w · the logged |ΔRMS| dB; 0 is eq. 1 alone."""
    enc_cfg = EncoderTrainConfig.tiny(variant="none", **{**TINY, "steps": 1, "val_every": 1, "checkpoint_every": 1})
    enc = train_encoder(synth_root, tmp_path / "enc", enc_cfg, device="cpu")
    runs = {}
    for w in (0.0, 0.5):
        cfg = ClonerTrainConfig.tiny(batch=2, seconds=0.5, steps=1, val_every=1, checkpoint_every=1, log_every=1,
                                     level_weight=w)
        train_cloner(synth_root, enc, tmp_path / f"w{w}", cfg, device="cpu")
        runs[w] = tmp_path / f"w{w}"
    # same parameters, same batch: the first training step (logged at step 1, before its update) and
    # the untrained validation (step 0); later rows differ because the updates differ
    for kind, step in (("train", 1), ("valid", 0)):
        level = dict(rows(runs[0.0], kind, "level_db"))[step]
        assert dict(rows(runs[0.5], kind, "level_db"))[step] == level and level > 0
        plain, weighted = dict(rows(runs[0.0], kind))[step], dict(rows(runs[0.5], kind))[step]
        assert weighted == pytest.approx(plain + 0.5 * level, rel=1e-5)
    assert dict(rows(runs[0.0], "valid"))[1] != dict(rows(runs[0.5], "valid"))[1]  # the term changed the update
    with pytest.raises(MixfxError, match="level-weight"):
        ClonerTrainConfig.tiny(level_weight=-1.0)


def test_ddp_two_cpu_processes(synth_root, tmp_path):
    """torchrun, 2 processes, gloo: one step equals a single process on the two ranks' batches together.

    Each rank draws its own batch (rank r: ``ContrastiveSegments(rank=r)``, FX generator
    ``step_generator(seed, step, r, stream)``); NT-Xent gathers the embeddings with gradients and DDP
    averages the gradients, so the step must equal one Adam step of a single process on the loss over
    the concatenated embeddings. The step-0 validation loss must be the mean of the ranks' own losses.
    """
    from mixfx.pipelines import train_encoder as trainer

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mixfx.cli", "-q",
           "train-encoder", str(synth_root), "-r", str(tmp_path / "ddp"), "--variant", "none", "--steps", "1",
           "--contents", "1", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    config = EncoderTrainConfig.tiny(variant="none", steps=1, contents=1)
    saved = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert {k: saved[k] for k in config.to_dict()} == json.loads(json.dumps(config.to_dict()))

    torch.manual_seed(config.seed)  # the single-process reference, from the parts
    model = FXEncoder(FXEncoderConfig.from_dict(config.encoder))
    chain = FXManipulator()
    train = MultitrackSegments(synth_root, "train")
    valid = MultitrackSegments(synth_root, "valid")
    loss_kw = dict(temperature=config.temperature, d0=config.d0, gather=False)
    val_seed = config.seed + trainer._VAL_SEED_OFFSET
    with torch.no_grad():
        per_rank = []
        for rank in (0, 1):
            vbatches = ContrastiveSegments(valid, contents=1, seconds=config.seconds, seed=val_seed, rank=rank)
            total = 0.0
            for i in range(config.val_batches):
                va, vb = contrastive_views(vbatches[i], chain, step_generator(val_seed, i, rank, trainer._FX_STREAM))
                model.eval()
                total += float(nt_xent(model(va), model(vb), **loss_kw))
            per_rank.append(total / config.val_batches)
    model.train()
    assert rows(tmp_path / "ddp", "valid", "loss")[0] == (0, pytest.approx(sum(per_rank) / 2, rel=1e-5))
    za, zb = [], []
    for rank in (0, 1):
        raw = ContrastiveSegments(train, contents=1, seconds=config.seconds, seed=config.seed, rank=rank)[0]  # step 1
        va, vb = contrastive_views(raw, chain, step_generator(config.seed, 1, rank, trainer._FX_STREAM))
        za.append(model(va))
        zb.append(model(vb))
    loss = nt_xent(torch.cat(za), torch.cat(zb), **loss_kw)
    assert rows(tmp_path / "ddp")[0] == (1, pytest.approx(float(loss.detach()), rel=1e-5))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    for name, value in model.named_parameters():  # (BatchNorm running statistics are rank 0's own)
        if value.grad.abs().max() < 1e-6:
            # a conv bias followed by BatchNorm has an analytically zero gradient: Adam turns its rounding
            # noise into a step of ±lr whose sign differs between the two reductions, so only bound it
            assert (ddp[name] - value.detach()).abs().max() <= 2 * config.lr + 1e-6, name
        else:
            assert torch.allclose(ddp[name], value.detach(), rtol=1e-5, atol=1e-6), name


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


def test_setup_runtime_resolves_the_device_like_everything_else(monkeypatch):
    """The runtime uses ``resolve_device``: same parsing, same errors; one process runs on the device asked."""
    from mixfx.train.distributed import setup_runtime

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    rt = setup_runtime("cpu")
    assert (rt.device, rt.world, rt.rank, rt.is_main, rt.distributed) == (torch.device("cpu"), 1, 0, True, False)
    with pytest.raises(MixfxError, match="'gpu0': not a torch device"):
        setup_runtime("gpu0")
    if not torch.cuda.is_available():
        assert setup_runtime(None).device == setup_runtime("auto").device == torch.device("cpu")
        with pytest.raises(MixfxError, match="CUDA is not available"):
            setup_runtime("cuda")
