"""``mixfx train-encoder``: contrastive FXencoder training with optional probability scheduling.

Variants (paper Table 1): ``none`` = Φ∅ (raw stems), ``norm`` = Φnorm (FX-normalized stems, fixed
probabilities), ``ps`` = Φp.s. (FX-normalized stems + probability scheduling). For ``norm``/``ps`` the
dataset must be the output of ``mixfx fx-normalize`` (it carries ``fx_normalization.json``); pass
``allow_unnormalized=True`` to override.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import torch

from mixfx.data.musdb import MultitrackSegments
from mixfx.errors import MixfxError
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import load_ir_folder
from mixfx.fx.params import FX_NAMES, FXProbabilities
from mixfx.losses.contrastive import nt_xent
from mixfx.pipelines.fx_normalize import NORMALIZATION_RECORD, is_fx_normalized
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.train.batches import ContrastiveSegments, contrastive_views, step_generator
from mixfx.train.config import EncoderTrainConfig
from mixfx.train.loop import (
    RunFolder, all_reduce_mean, cosine_scheduler, data_loader, run_loop, save_step_checkpoint, setup_runtime,
    start_or_resume, teardown_runtime,
)
from mixfx.train.schedule import chance_loss, per_fx_probabilities, scheduled_probabilities

logger = logging.getLogger(__name__)
_FX_STREAM, _VAL_SEED_OFFSET = 7, 1_000_003


def check_dataset_variant(data: str | os.PathLike, variant: str, allow_unnormalized: bool) -> None:
    normalized = is_fx_normalized(data)
    if variant in ("norm", "ps") and not normalized and not allow_unnormalized:
        raise MixfxError(
            f"{data}: variant {variant!r} trains on FX-normalized stems, but this dataset has no {NORMALIZATION_RECORD} "
            f"(run `mixfx fx-normalize` first, or pass --allow-unnormalized)"
        )
    if variant == "none" and normalized:
        logger.warning("%s is FX-normalized but variant 'none' (Φ∅) is meant for raw stems", data)


def train_encoder(
    data: str | os.PathLike,
    run_dir: str | os.PathLike,
    config: EncoderTrainConfig,
    *,
    resume: bool = False,
    device: str | None = None,
    ir_dir: str | os.PathLike | None = None,
    allow_unnormalized: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train an FXencoder; returns the path of the final checkpoint (``checkpoints/last.pt``).

    Args:
        data: dataset folder (MUSDB18-HQ layout; FX-normalized for the ``norm``/``ps`` variants).
        run_dir: run folder (config, metrics, TensorBoard, checkpoints).
        config: training configuration (``EncoderTrainConfig.paper()`` / ``.tiny()``).
        resume: continue from ``run_dir/checkpoints/last.pt`` (same config required).
        device: ``cpu``/``cuda``/None (auto). Under ``torchrun`` each process takes its local GPU.
        ir_dir: impulse responses for the reverb (default: built-in synthetic IRs).
        stop_after: stop after this many steps (simulates an interrupted run).
    """
    check_dataset_variant(data, config.variant, allow_unnormalized)
    rt = setup_runtime(device)
    try:
        return _train(data, run_dir, config, rt, resume, ir_dir, progress, stop_after)
    finally:
        teardown_runtime(rt)


def _train(data, run_dir, config, rt, resume, ir_dir, progress, stop_after) -> Path:
    # data and impulse responses are checked before the run folder is touched
    bank = load_ir_folder(ir_dir, sample_rate=config.sample_rate) if ir_dir else None
    chain = FXManipulator(sample_rate=config.sample_rate, ir_bank=bank)
    train_data = MultitrackSegments(data, "train", silence_threshold_db=config.silence_threshold_db, sample_rate=config.sample_rate)
    valid_data = MultitrackSegments(data, "valid", silence_threshold_db=config.silence_threshold_db, sample_rate=config.sample_rate)
    run = RunFolder(run_dir, rt)
    torch.manual_seed(config.seed)
    model = FXEncoder(FXEncoderConfig.from_dict(config.encoder)).to(rt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = cosine_scheduler(optimizer, config.steps)
    start, extra = start_or_resume(run, model, optimizer, scheduler, config, resume=resume, device=rt.device)
    probabilities = dataclasses.replace(FXProbabilities(), **extra["probabilities"]) if extra else FXProbabilities()
    run.write_config({"trainer": "fxencoder", "data": str(data), **config.to_dict()})
    batches = ContrastiveSegments(train_data, contents=config.contents, seconds=config.seconds, seed=config.seed, rank=rt.rank)
    dmodel = model
    if rt.distributed:
        dmodel = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    state = {"probabilities": probabilities}
    amp = config.amp and rt.device.type == "cuda"

    def encode(x: torch.Tensor, net) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            return net(x).float()

    def step_fn(raw, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        g = step_generator(config.seed, step, rt.rank, _FX_STREAM)
        va, vb = contrastive_views(raw, chain, g, device=rt.device, probabilities=state["probabilities"])
        fx_seconds = time.perf_counter() - t0
        za, zb = encode(va, dmodel), encode(vb, dmodel)  # the views have different lengths
        loss, terms = nt_xent(za, zb, temperature=config.temperature, d0=config.d0, output="full")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item(), "accuracy": float(terms["accuracy"]), "lr": scheduler.get_last_lr()[0],
                "fx_seconds": fx_seconds}

    def validation_loss(single_fx: str | None) -> float:
        """Mean NT-Xent over the validation batches (each rank's own batch: ``gather=False``)."""
        vbatches = ContrastiveSegments(valid_data, contents=config.contents, seconds=config.seconds,
                                       seed=config.seed + _VAL_SEED_OFFSET, rank=rt.rank)
        total = 0.0
        with torch.no_grad():
            for i in range(config.val_batches):
                g = step_generator(config.seed + _VAL_SEED_OFFSET, i, rt.rank, _FX_STREAM + 1 + FX_NAMES.index(single_fx) if single_fx else _FX_STREAM)
                va, vb = contrastive_views(vbatches[i], chain, g, device=rt.device, single_fx=single_fx)
                state["val_pairs"] = va.shape[0]
                total += float(nt_xent(encode(va, model), encode(vb, model), temperature=config.temperature, d0=config.d0, gather=False))
        return all_reduce_mean(total / config.val_batches, rt)

    def validate(step: int) -> dict[str, float]:
        model.eval()
        out = {"loss": validation_loss(None)}
        per_fx = {fx: validation_loss(fx) for fx in FX_NAMES}
        out.update({f"loss_{fx}": v for fx, v in per_fx.items()})
        model.train()
        if config.variant == "ps":
            # losses relative to chance; no rescheduling while they lie within noise (see mixfx.train.schedule)
            state["probabilities"] = scheduled_probabilities(FXProbabilities(), per_fx, chance_loss=chance_loss(state["val_pairs"]),
                                                             current=state["probabilities"])
            out.update({f"p_{fx}": v for fx, v in per_fx_probabilities(state["probabilities"]).items()})
            logger.info("probability scheduling at step %d: %s", step,
                        ", ".join(f"{fx} {out[f'p_{fx}']:.2f}" for fx in FX_NAMES))
        return out

    def save(step: int) -> None:
        extra = {"probabilities": state["probabilities"].to_dict(), "variant": config.variant,
                 "label": {"none": "Φ∅", "norm": "Φnorm", "ps": "Φp.s."}[config.variant]}
        save_step_checkpoint(run, model, optimizer, scheduler, step, config, extra)

    def audio_seconds(raw) -> float:
        n = raw.a.shape[1] * 2  # contents × configurations per content
        return n * (raw.a.shape[-1] + raw.b.shape[-1]) / config.sample_rate

    model.train()
    loader = data_loader(batches, start, config.steps, config.workers)
    run_loop(run=run, rt=rt, loader=loader, start_step=start, total_steps=config.steps, step_fn=step_fn,
             validate=validate, save=save, val_every=config.val_every, checkpoint_every=config.checkpoint_every,
             log_every=config.log_every, audio_seconds_per_step=audio_seconds, progress=progress, stop_after=stop_after)
    run.close()
    return run.checkpoints / "last.pt"
