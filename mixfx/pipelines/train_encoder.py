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

from mixfx.io.paths import check_output_dir
from mixfx.errors import MixfxError
from mixfx.fx.params import FX_NAMES, FXProbabilities
from mixfx.fxnorm.dataset import NORMALIZATION_RECORD, is_fx_normalized
from mixfx.losses.contrastive import nt_xent
from mixfx.models.encoder import FXEncoder, FXEncoderConfig
from mixfx.progress import Progress
from mixfx.train.batches import ContrastiveSegments, RawContrastiveBatch, contrastive_views, step_generator
from mixfx.train.config import EncoderTrainConfig
from mixfx.train.distributed import all_reduce_mean, runtime
from mixfx.train.schedule import chance_loss, per_fx_probabilities, scheduled_probabilities
from mixfx.train.trainer import Trainer, setup_trainer

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
    progress: Progress = False,
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
        progress: ``True`` for a tqdm bar (rank 0), or a :class:`~mixfx.progress.ProgressFn` called
            ``(step, steps, "train: …")`` after each step.
    """
    check_output_dir(run_dir, option="--run", inputs=[data])
    check_dataset_variant(data, config.variant, allow_unnormalized)
    with runtime(device) as rt:
        record = {"trainer": "fxencoder", "data": str(data)}
        t = setup_trainer(data, run_dir, config, rt, build_model=lambda: FXEncoder(FXEncoderConfig.from_dict(config.encoder)),
                          record=record, resume=resume, ir_dir=ir_dir)
        steps = _EncoderSteps(t, config)
        batches = ContrastiveSegments(t.train_data, contents=config.contents, seconds=config.seconds, seed=config.seed,
                                      rank=rt.rank)
        t.fit(batches, step_fn=steps.step, validate=steps.validate, save=steps.save,
              audio_seconds_per_step=steps.audio_seconds, progress=progress, stop_after=stop_after)
        return t.run.checkpoints / "last.pt"


class _EncoderSteps:
    """The FXencoder's training step, validation (with probability scheduling) and checkpoint contents."""

    def __init__(self, t: Trainer, config: EncoderTrainConfig) -> None:
        self.t, self.config = t, config
        self.probabilities = (dataclasses.replace(FXProbabilities(), **t.extra["probabilities"]) if t.extra
                              else FXProbabilities())
        self.val_pairs = 0

    def encode(self, x: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        with self.t.autocast():
            return net(x).float()

    def step(self, raw: RawContrastiveBatch, step: int) -> dict[str, float]:
        t, config = self.t, self.config
        t0 = time.perf_counter()
        g = step_generator(config.seed, step, t.rt.rank, _FX_STREAM)
        va, vb = contrastive_views(raw, t.chain, g, device=t.device, probabilities=self.probabilities)
        fx_seconds = time.perf_counter() - t0
        za, zb = self.encode(va, t.net), self.encode(vb, t.net)  # the views have different lengths
        loss, terms = nt_xent(za, zb, temperature=config.temperature, d0=config.d0, output="full")
        lr = t.optimize(loss)
        return {"loss": loss.item(), "accuracy": float(terms["accuracy"]), "lr": lr, "fx_seconds": fx_seconds}

    def validation_loss(self, single_fx: str | None) -> float:
        """Mean NT-Xent over the validation batches (each rank's own batch: ``gather=False``)."""
        t, config = self.t, self.config
        seed = config.seed + _VAL_SEED_OFFSET
        vbatches = ContrastiveSegments(t.valid_data, contents=config.contents, seconds=config.seconds, seed=seed,
                                       rank=t.rt.rank)
        stream = _FX_STREAM + 1 + FX_NAMES.index(single_fx) if single_fx else _FX_STREAM
        total = 0.0
        with torch.no_grad():
            for i in range(config.val_batches):
                g = step_generator(seed, i, t.rt.rank, stream)
                va, vb = contrastive_views(vbatches[i], t.chain, g, device=t.device, single_fx=single_fx)
                self.val_pairs = va.shape[0]
                total += float(nt_xent(self.encode(va, t.model), self.encode(vb, t.model), temperature=config.temperature,
                                       d0=config.d0, gather=False))
        return all_reduce_mean(total / config.val_batches, t.rt)

    def validate(self, step: int) -> dict[str, float]:
        model = self.t.model
        model.eval()
        out = {"loss": self.validation_loss(None)}
        per_fx = {fx: self.validation_loss(fx) for fx in FX_NAMES}
        out.update({f"loss_{fx}": v for fx, v in per_fx.items()})
        model.train()
        if self.config.variant == "ps":
            # losses relative to chance; no rescheduling while they lie within noise (see mixfx.train.schedule)
            self.probabilities = scheduled_probabilities(FXProbabilities(), per_fx, chance_loss=chance_loss(self.val_pairs),
                                                         current=self.probabilities)
            out.update({f"p_{fx}": v for fx, v in per_fx_probabilities(self.probabilities).items()})
            logger.info("probability scheduling at step %d: %s", step,
                        ", ".join(f"{fx} {out[f'p_{fx}']:.2f}" for fx in FX_NAMES))
        return out

    def save(self, step: int) -> None:
        variant = self.config.variant
        self.t.save(step, {"probabilities": self.probabilities.to_dict(), "variant": variant,
                           "label": {"none": "Φ∅", "norm": "Φnorm", "ps": "Φp.s."}[variant]})

    def audio_seconds(self, raw: RawContrastiveBatch) -> float:
        n = raw.a.shape[1] * 2  # contents × configurations per content
        return n * (raw.a.shape[-1] + raw.b.shape[-1]) / self.config.sample_rate
