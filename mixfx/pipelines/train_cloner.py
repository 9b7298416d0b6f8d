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

from mixfx.io.paths import check_output_dir
from mixfx.losses.level import level_error_db
from mixfx.losses.spectral import SpectralLossConfig, spectral_loss
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.official import load_model
from mixfx.progress import Progress
from mixfx.train.batches import ClonerSegments, RawClonerBatch, cloner_triplet, step_generator
from mixfx.train.config import ClonerTrainConfig
from mixfx.train.distributed import all_reduce_mean, runtime
from mixfx.train.trainer import Trainer, setup_trainer

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
    progress: Progress = False,
    stop_after: int | None = None,
) -> Path:
    """Train a MixFXcloner; returns ``run_dir/checkpoints/last.pt``.

    Args:
        data: FX-normalized dataset (MUSDB18-HQ layout).
        encoder: FXencoder checkpoint (ours or the official ``FXencoder_ps.pt``); kept frozen.
        run_dir: run folder.
        config: ``ClonerTrainConfig.paper()`` / ``.tiny()``; its ``cond_dim`` is set to the encoder's size.
        resume, device, ir_dir, stop_after, progress: as for :func:`mixfx.pipelines.train_encoder.train_encoder`.
    """
    check_output_dir(run_dir, option="--run", inputs=[data])
    with runtime(device) as rt:
        phi = load_model(encoder, kind="fxencoder", map_location=rt.device).eval()
        for p in phi.parameters():
            p.requires_grad_(False)
        cloner_cfg = ClonerConfig.from_dict({**config.cloner, "cond_dim": phi.dim})
        if cloner_cfg.cond_dim != config.cloner.get("cond_dim", cloner_cfg.cond_dim):
            logger.info("MixFXcloner conditioning size set to the encoder's embedding size %d", phi.dim)
        config = dataclasses.replace(config, cloner=cloner_cfg.to_dict())
        record = {"trainer": "mixfxcloner", "data": str(data), "encoder": str(encoder)}
        t = setup_trainer(data, run_dir, config, rt, build_model=lambda: MixFXCloner(cloner_cfg), record=record,
                          resume=resume, ir_dir=ir_dir)
        steps = _ClonerSteps(t, config, phi, str(encoder))
        batches = ClonerSegments(t.train_data, batch=config.batch, seconds=config.seconds, seed=config.seed, rank=rt.rank)
        t.fit(batches, step_fn=steps.step, validate=steps.validate, save=steps.save,
              audio_seconds_per_step=steps.audio_seconds, progress=progress, stop_after=stop_after)
        return t.run.checkpoints / "last.pt"


class _ClonerSteps:
    """MixFXcloner's training step, validation and checkpoint contents (Φ frozen)."""

    def __init__(self, t: Trainer, config: ClonerTrainConfig, phi: torch.nn.Module, encoder_path: str) -> None:
        self.t, self.config, self.phi, self.encoder_path = t, config, phi, encoder_path
        self.loss_config = SpectralLossConfig(fft_sizes=tuple(config.fft_sizes))

    def manipulate(self, raw: RawClonerBatch, g: torch.Generator):
        x, ref, gt = cloner_triplet(raw, self.t.chain, g, device=self.t.device)
        return x, ref.clamp(-1, 1), gt.clamp(-1, 1)  # clamped as in the official loader

    def forward(self, x, ref, gt, net):
        with torch.no_grad(), self.t.autocast():
            cond = self.phi(ref).float()
        with self.t.autocast():
            y = net(x, cond).float()
        loss, terms = spectral_loss(y, gt, config=self.loss_config, output="full")
        level = level_error_db(y, gt).mean()
        terms["level_db"] = level.detach()
        if self.config.level_weight > 0:
            loss = loss + self.config.level_weight * level
        return loss, terms

    def step(self, raw: RawClonerBatch, step: int) -> dict[str, float]:
        t, config = self.t, self.config
        t0 = time.perf_counter()
        triplet = self.manipulate(raw, step_generator(config.seed, step, t.rt.rank, _FX_STREAM))
        fx_seconds = time.perf_counter() - t0
        loss, terms = self.forward(*triplet, t.net)
        lr = t.optimize(loss)
        return {"loss": loss.item(), "left_right": float(terms["left_right"]), "mid_side": float(terms["mid_side"]),
                "level_db": float(terms["level_db"]), "lr": lr, "fx_seconds": fx_seconds}

    def validate(self, step: int) -> dict[str, float]:
        t, config = self.t, self.config
        t.model.eval()
        seed = config.seed + _VAL_SEED_OFFSET
        vb = ClonerSegments(t.valid_data, batch=config.batch, seconds=config.seconds, seed=seed, rank=t.rt.rank)
        total = {"loss": 0.0, "left_right": 0.0, "mid_side": 0.0, "level_db": 0.0}
        with torch.no_grad():
            for i in range(config.val_batches):
                triplet = self.manipulate(vb[i], step_generator(seed, i, t.rt.rank, _FX_STREAM))
                loss, terms = self.forward(*triplet, t.model)
                total["loss"] += float(loss)
                total["left_right"] += float(terms["left_right"])
                total["mid_side"] += float(terms["mid_side"])
                total["level_db"] += float(terms["level_db"])
        t.model.train()
        return {k: all_reduce_mean(v / config.val_batches, t.rt) for k, v in total.items()}

    def save(self, step: int) -> None:
        self.t.save(step, {"encoder": self.encoder_path})

    def audio_seconds(self, raw: RawClonerBatch) -> float:
        return 3 * raw.x.shape[0] * raw.x.shape[-1] / self.config.sample_rate
