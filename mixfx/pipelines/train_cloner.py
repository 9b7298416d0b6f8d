"""``mixfx train-cloner``: MixFXcloner Ψ training conditioned on a frozen FXencoder Φ (paper §2.3).

Per example (one stem): the input is an FX-normalized segment A, the reference is another segment B
of the same stem manipulated by a random FXmanipulator configuration, and the ground truth is A
manipulated by the *same* configuration. Ψ(A, Φ(ref)) is trained towards gt with the multi-scale
spectral loss on left, right, mid and side (eq. 1). Probabilities stay at the chain's defaults (the
official code does not schedule them for Ψ).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import torch

from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import load_ir_folder
from mixfx.losses.spectral import SpectralLossConfig, spectral_loss
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.official import load_model
from mixfx.train.batches import ClonerSegments, cloner_triplet, step_generator
from mixfx.train.config import ClonerTrainConfig
from mixfx.train.loop import (
    RunFolder, all_reduce_mean, cosine_scheduler, data_loader, run_loop, save_step_checkpoint, setup_runtime,
    start_or_resume, teardown_runtime,
)

logger = logging.getLogger(__name__)
_FX_STREAM, _VAL_SEED_OFFSET = 11, 2_000_003


def train_cloner(
    data: str | os.PathLike,
    encoder: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: ClonerTrainConfig,
    *,
    resume: bool = False,
    device: str | None = None,
    ir_dir: str | os.PathLike | None = None,
    progress: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train a MixFXcloner; returns ``run_dir/checkpoints/last.pt``.

    Args:
        data: FX-normalized dataset (MUSDB18-HQ layout).
        encoder: FXencoder checkpoint (ours or the official ``FXencoder_ps.pt``); kept frozen.
        run_dir: run folder.
        config: ``ClonerTrainConfig.paper()`` / ``.tiny()``; its ``cond_dim`` is set to the encoder's size.
    """
    rt = setup_runtime(device)
    try:
        return _train(data, encoder, run_dir, config, rt, resume, ir_dir, progress, stop_after)
    finally:
        teardown_runtime(rt)


def _train(data, encoder_path, run_dir, config, rt, resume, ir_dir, progress, stop_after) -> Path:
    phi = load_model(encoder_path, kind="fxencoder", map_location=rt.device).eval()
    for p in phi.parameters():
        p.requires_grad_(False)
    cloner_cfg = ClonerConfig.from_dict({**config.cloner, "cond_dim": phi.dim})
    if cloner_cfg.cond_dim != config.cloner.get("cond_dim", cloner_cfg.cond_dim):
        logger.info("MixFXcloner conditioning size set to the encoder's embedding size %d", phi.dim)
    config = dataclasses.replace(config, cloner=cloner_cfg.to_dict())
    # data and impulse responses are checked before the run folder is touched
    bank = load_ir_folder(ir_dir, sample_rate=config.sample_rate) if ir_dir else None
    chain = FXManipulator(sample_rate=config.sample_rate, ir_bank=bank)
    kw = dict(silence_threshold_db=config.silence_threshold_db, sample_rate=config.sample_rate)
    train_data, valid_data = MultitrackSegments(data, "train", **kw), MultitrackSegments(data, "valid", **kw)
    run = RunFolder(run_dir, rt)
    torch.manual_seed(config.seed)
    model = MixFXCloner(cloner_cfg).to(rt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = cosine_scheduler(optimizer, config.steps)
    start, _ = start_or_resume(run, model, optimizer, scheduler, config, resume=resume, device=rt.device)
    run.write_config({"trainer": "mixfxcloner", "data": str(data), "encoder": str(encoder_path), **config.to_dict()})
    batches = ClonerSegments(train_data, batch=config.batch, seconds=config.seconds, seed=config.seed, rank=rt.rank)
    loss_cfg = SpectralLossConfig(fft_sizes=tuple(config.fft_sizes))
    dmodel = model
    if rt.distributed:
        dmodel = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    amp = config.amp and rt.device.type == "cuda"

    def manipulate(raw, g):
        x, ref, gt = cloner_triplet(raw, chain, g, device=rt.device)
        return x, ref.clamp(-1, 1), gt.clamp(-1, 1)  # clamped as in the official loader

    def forward(x, ref, gt, net):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            cond = phi(ref).float()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            y = net(x, cond).float()
        return spectral_loss(y, gt, config=loss_cfg, output="full")

    def step_fn(raw, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        triplet = manipulate(raw, step_generator(config.seed, step, rt.rank, _FX_STREAM))
        fx_seconds = time.perf_counter() - t0
        loss, terms = forward(*triplet, dmodel)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item(), "left_right": float(terms["left_right"]), "mid_side": float(terms["mid_side"]),
                "lr": scheduler.get_last_lr()[0], "fx_seconds": fx_seconds}

    def validate(step: int) -> dict[str, float]:
        model.eval()
        vb = ClonerSegments(valid_data, batch=config.batch, seconds=config.seconds, seed=config.seed + _VAL_SEED_OFFSET, rank=rt.rank)
        total = {"loss": 0.0, "left_right": 0.0, "mid_side": 0.0}
        with torch.no_grad():
            for i in range(config.val_batches):
                triplet = manipulate(vb[i], step_generator(config.seed + _VAL_SEED_OFFSET, i, rt.rank, _FX_STREAM))
                loss, terms = forward(*triplet, model)
                total["loss"] += float(loss)
                total["left_right"] += float(terms["left_right"])
                total["mid_side"] += float(terms["mid_side"])
        model.train()
        return {k: all_reduce_mean(v / config.val_batches, rt) for k, v in total.items()}

    def save(step: int) -> None:
        save_step_checkpoint(run, model, optimizer, scheduler, step, config, {"encoder": str(encoder_path)})

    model.train()
    loader = data_loader(batches, start, config.steps, config.workers)
    run_loop(run=run, rt=rt, loader=loader, start_step=start, total_steps=config.steps, step_fn=step_fn,
             validate=validate, save=save, val_every=config.val_every, checkpoint_every=config.checkpoint_every,
             log_every=config.log_every, progress=progress, stop_after=stop_after,
             audio_seconds_per_step=lambda raw: 3 * raw.x.shape[0] * raw.x.shape[-1] / config.sample_rate)
    run.close()
    return run.checkpoints / "last.pt"
