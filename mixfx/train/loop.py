"""The training loop both trainers share: step-indexed batches in, metrics and checkpoints out.

Raw batches come from a DataLoader over a step-indexed dataset (deterministic per step and rank,
:mod:`mixfx.train.batches`); ``step_fn`` runs FX on the device and the model and returns the
loss; the share of each step spent waiting for data and on FX is logged. The learning rate
follows a cosine from its initial value to 0 (:func:`cosine_scheduler`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

import torch

from mixfx.progress import Progress, progress_reporter
from mixfx.train.distributed import Runtime
from mixfx.train.run_folder import RunFolder

__all__ = ["cosine_scheduler", "data_loader", "run_loop"]

logger = logging.getLogger(__name__)


def cosine_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing without restart from the initial LR to 0 over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps)))


def data_loader(dataset: torch.utils.data.Dataset, start: int, stop: int, workers: int) -> torch.utils.data.DataLoader:
    """Items ``start … stop-1`` of a step-indexed dataset, in order, prefetched by ``workers`` processes."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(start, stop), num_workers=workers,
        persistent_workers=False, prefetch_factor=2 if workers else None,
    )


def run_loop(
    *,
    run: RunFolder,
    rt: Runtime,
    loader,
    start_step: int,
    total_steps: int,
    step_fn: Callable[[Any, int], dict[str, float]],
    validate: Callable[[int], dict[str, float]] | None,
    save: Callable[[int], None],
    val_every: int,
    checkpoint_every: int,
    log_every: int,
    audio_seconds_per_step: Callable[[Any], float],
    progress: Progress = False,
    stop_after: int | None = None,
) -> int:
    """Run steps ``start_step+1 … total_steps``; returns the last step done.

    A fresh run first validates the untrained model (logged at step 0).
    ``step_fn(raw, step)`` returns metrics including ``loss`` and ``fx_seconds``. Checkpoints are
    written every ``checkpoint_every`` steps and at the end; ``stop_after`` ends early after that many
    steps (for tests of resumption). ``progress`` (rank 0 only): ``True`` for a tqdm bar, or a
    :class:`~mixfx.progress.ProgressFn` called ``(step, total_steps, "train: loss L, A audio s/s")``
    after each step.
    """
    report = progress_reporter(progress if rt.is_main else None, unit="step")
    step = start_step
    if validate is not None and start_step == 0:  # the untrained model's validation loss: the baseline
        run.log(0, "valid", validate(0))
    t_wait = time.perf_counter()
    window: list[dict[str, float]] = []
    for raw in loader:
        step += 1
        data_seconds = time.perf_counter() - t_wait
        t0 = time.perf_counter()
        metrics = step_fn(raw, step)
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
        compute = time.perf_counter() - t0
        total = data_seconds + compute
        metrics.update(
            data_share=data_seconds / total, fx_share=metrics.pop("fx_seconds", 0.0) / total,
            audio_seconds_per_second=audio_seconds_per_step(raw) * rt.world / total,
        )
        window.append(metrics)
        report(step, total_steps, f"train: loss {metrics['loss']:.4f}, {metrics['audio_seconds_per_second']:.0f} audio s/s")
        if step % log_every == 0 or step == total_steps:
            run.log(step, "train", {k: sum(m[k] for m in window) / len(window) for k in window[0]})
            logger.info("step %d/%d loss %.4f (data %.0f%%, FX %.0f%% of the step)", step, total_steps,
                        metrics["loss"], 100 * metrics["data_share"], 100 * metrics["fx_share"])
            window = []
        if validate is not None and (step % val_every == 0 or step == total_steps):
            run.log(step, "valid", validate(step))
        if step % checkpoint_every == 0 or step == total_steps:
            save(step)
        if stop_after is not None and step - start_step >= stop_after:
            break
        t_wait = time.perf_counter()
    report.close()
    return step
