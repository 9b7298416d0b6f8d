"""The setup both trainers share: data, FX chain, run folder, model, optimizer, resumption, DDP.

:func:`setup_trainer` does, in this order (the order fixes the random draws, so keep it): load
the impulse responses and the two data splits (bad input fails before the run folder is
touched), seed the global generator with ``config.seed``, build the model, Adam with
``config.lr`` and the cosine schedule over ``config.steps``, start or resume the run, write
``config.json`` and wrap the model for DDP. The :class:`Trainer` it returns holds all of that;
a trainer (:mod:`mixfx.pipelines.train_encoder`, :mod:`mixfx.pipelines.train_cloner`) adds
its step, validation and checkpoint contents and calls :meth:`Trainer.fit`.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable

import torch

from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import load_ir_folder
from mixfx.progress import Progress
from mixfx.train.config import LoopSettings
from mixfx.train.distributed import Runtime, wrap_ddp
from mixfx.train.loop import cosine_scheduler, data_loader, run_loop
from mixfx.train.run_folder import RunFolder, save_step_checkpoint, start_or_resume

__all__ = ["Trainer", "setup_trainer"]


@dataclass
class Trainer:
    """Everything a training run holds once set up (see the module docstring).

    Attributes:
        net: the model as the training step calls it (DDP-wrapped on several processes);
            validation calls ``model`` itself (each rank on its own batches).
        start: the step the run starts after (0, or the resumed checkpoint's step).
        extra: the resumed checkpoint's ``extra`` dict (empty on a fresh start).
    """

    config: LoopSettings
    rt: Runtime
    run: RunFolder
    chain: FXManipulator
    train_data: MultitrackSegments
    valid_data: MultitrackSegments
    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    start: int
    extra: dict

    @property
    def device(self) -> torch.device:
        return self.rt.device

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast when ``config.amp`` is set and the run is on CUDA, else a no-op."""
        amp = self.config.amp and self.rt.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp)

    def optimize(self, loss: torch.Tensor) -> float:
        """One optimizer step on ``loss`` (zero grad, backward, Adam, scheduler); returns the new LR."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return self.scheduler.get_last_lr()[0]

    def save(self, step: int, extra: dict[str, Any]) -> None:
        """``checkpoints/step_<k>.pt`` and ``last.pt`` with the training state and ``extra`` (rank 0)."""
        save_step_checkpoint(self.run, self.model, self.optimizer, self.scheduler, step, self.config, extra)

    def fit(self, batches: torch.utils.data.Dataset, *, step_fn: Callable[[Any, int], dict[str, float]],
            validate: Callable[[int], dict[str, float]] | None, save: Callable[[int], None],
            audio_seconds_per_step: Callable[[Any], float], progress: Progress = False,
            stop_after: int | None = None) -> int:
        """Train on the step-indexed ``batches`` up to ``config.steps`` (see :func:`mixfx.train.loop.run_loop`).

        Returns the last step done; the run folder is closed afterwards.
        """
        cfg = self.config
        self.model.train()
        loader = data_loader(batches, self.start, cfg.steps, cfg.workers)
        last = run_loop(run=self.run, rt=self.rt, loader=loader, start_step=self.start, total_steps=cfg.steps,
                        step_fn=step_fn, validate=validate, save=save, val_every=cfg.val_every,
                        checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every,
                        audio_seconds_per_step=audio_seconds_per_step, progress=progress, stop_after=stop_after)
        self.run.close()
        return last


def setup_trainer(data: str | os.PathLike, run_dir: str | os.PathLike, config: LoopSettings, rt: Runtime, *,
                  build_model: Callable[[], torch.nn.Module], record: dict[str, Any], resume: bool = False,
                  ir_dir: str | os.PathLike | None = None) -> Trainer:
    """Set up a run (see the module docstring for the order).

    Args:
        data: dataset folder (MUSDB18-HQ layout) with ``train`` and ``valid`` splits.
        config: the trainer's configuration (``steps`` and :class:`~mixfx.train.config.LoopSettings`).
        build_model: makes the untrained model (called right after ``torch.manual_seed(config.seed)``).
        record: written to ``config.json`` ahead of ``config.to_dict()`` (trainer name, data, ...).
        resume: continue from ``run_dir/checkpoints/last.pt``.
        ir_dir: impulse responses for the reverb (default: built-in synthetic IRs).

    Raises:
        MixfxError: bad dataset or impulse responses, or see :func:`~mixfx.train.run_folder.start_or_resume`.
    """
    bank = load_ir_folder(ir_dir, sample_rate=config.sample_rate) if ir_dir else None
    chain = FXManipulator(sample_rate=config.sample_rate, ir_bank=bank)
    kw = dict(silence_threshold_db=config.silence_threshold_db, sample_rate=config.sample_rate)
    train_data, valid_data = MultitrackSegments(data, "train", **kw), MultitrackSegments(data, "valid", **kw)
    run = RunFolder(run_dir, rt)
    torch.manual_seed(config.seed)
    model = build_model().to(rt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = cosine_scheduler(optimizer, config.steps)
    start, extra = start_or_resume(run, model, optimizer, scheduler, config, resume=resume, device=rt.device)
    run.write_config({**record, **config.to_dict()})
    return Trainer(config, rt, run, chain, train_data, valid_data, model, wrap_ddp(model, rt), optimizer, scheduler,
                   start, extra)
