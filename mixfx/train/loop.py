"""Training infrastructure shared by both trainers: devices/DDP, run folders, metrics, checkpoints, the loop.

* Devices: CPU, one GPU, or many GPUs/nodes under ``torchrun`` (PyTorch DDP; NCCL on CUDA, gloo on CPU).
* Run folder: ``config.json``, ``git_revision.txt``, ``metrics.csv``, ``tensorboard/``, ``checkpoints/``.
  Only rank 0 writes. Checkpoints are atomic (``step_<k>.pt`` and ``last.pt``); a resumed run truncates
  ``metrics.csv`` to the checkpoint's step, so its rows equal those of an uninterrupted run.
* The loop: raw batches come from a DataLoader indexed by step (deterministic per step and rank);
  ``step_fn`` runs FX on the device and the model, and returns the loss; the share of each step spent
  waiting for data and on FX is logged.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from mixfx.errors import MixfxError
from mixfx.io.atomic import atomic_write

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Where this process trains: rank, world size, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup_runtime(device: str | None = None) -> Runtime:
    """Read ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and pick the device.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if want_cuda and not torch.cuda.is_available():
        raise MixfxError("--device cuda requested but CUDA is not available")
    dev = torch.device(f"cuda:{local}") if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return Runtime(rank, world, local, dev)


def teardown_runtime(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: float, rt: Runtime) -> float:
    """Mean of a scalar over ranks (identity on one process)."""
    if not rt.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=rt.device if rt.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / rt.world


def git_revision() -> str:
    """The git revision of the installed mixfx source tree (``unknown`` outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


class RunFolder:
    """A training run's folder; every write happens on rank 0 only."""

    def __init__(self, path: str | os.PathLike, rt: Runtime) -> None:
        self.path = Path(path)
        self.rt = rt
        self.checkpoints = self.path / "checkpoints"
        self._tb = None  # folders are created by the first write, so a refused start leaves nothing behind

    def _make(self) -> None:
        if self.rt.is_main:
            self.checkpoints.mkdir(parents=True, exist_ok=True)

    def clean_temporaries(self) -> None:
        """Remove the temporary files of checkpoint writes that a killed run left behind."""
        if self.rt.is_main and self.checkpoints.is_dir():
            for tmp in self.checkpoints.glob(".*.tmp*"):
                if tmp.is_file():
                    tmp.unlink()
                    logger.info("removed %s (an interrupted checkpoint write)", tmp)

    def last_checkpoint(self) -> Path | None:
        last = self.checkpoints / "last.pt"
        return last if last.is_file() else None

    def write_config(self, config: dict[str, Any]) -> None:
        if not self.rt.is_main:
            return
        self._make()
        with atomic_write(self.path / "config.json", "w") as f:
            json.dump(config, f, indent=2)
        with atomic_write(self.path / "git_revision.txt", "w") as f:
            f.write(git_revision() + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Drop metric rows after ``step`` (a resumed run rewrites them)."""
        path = self.path / "metrics.csv"
        if not self.rt.is_main or not path.is_file():
            return
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(r["step"]) <= step]
        with atomic_write(path, "w", newline="") as f:
            if keep:
                w = csv.DictWriter(f, fieldnames=list(keep[0].keys()))
                w.writeheader()
                w.writerows(keep)

    def log(self, step: int, kind: str, metrics: dict[str, float]) -> None:
        """Append a row ``step, kind, name, value`` per metric to ``metrics.csv`` and to TensorBoard."""
        if not self.rt.is_main:
            return
        path = self.path / "metrics.csv"
        new = not path.is_file()
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "kind", "name", "value"])
            for name, value in metrics.items():
                w.writerow([step, kind, name, f"{float(value):.6g}"])
        try:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.path / "tensorboard"))
            for name, value in metrics.items():
                self._tb.add_scalar(f"{kind}/{name}", float(value), step)
        except ImportError:  # tensorboard is a dependency, but the CSV is enough to go on
            pass

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def cosine_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing without restart from the initial LR to 0 over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps)))


def rng_state() -> dict[str, Any]:
    """Global torch RNG states (the loop itself draws from per-step generators; kept for completeness)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any] | None) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    progress: bool = False,
    stop_after: int | None = None,
) -> int:
    """Run steps ``start_step+1 … total_steps``; returns the last step done.

    A fresh run first validates the untrained model (logged at step 0).
    ``step_fn(raw, step)`` returns metrics including ``loss`` and ``fx_seconds``. Checkpoints are
    written every ``checkpoint_every`` steps and at the end; ``stop_after`` ends early after that many
    steps (for tests of resumption).
    """
    from tqdm import tqdm

    bar = tqdm(total=total_steps, initial=start_step, disable=not (progress and rt.is_main and sys.stderr.isatty()), unit="step", leave=False)
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
        bar.update(1)
        bar.set_postfix(loss=f"{metrics['loss']:.4f}", audio_s_per_s=f"{metrics['audio_seconds_per_second']:.0f}")
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
    bar.close()
    return step


def start_or_resume(run: RunFolder, model, optimizer, scheduler, config, *, resume: bool, device) -> tuple[int, dict]:
    """Fresh start (step 0) or restore model/optimizer/scheduler from ``last.pt``; returns ``(step, extra)``.

    Raises:
        MixfxError: a fresh start over an existing run, nothing to resume, or another configuration.
    """
    from mixfx.io.checkpoint import load_model_checkpoint
    from mixfx.configs import config_from_dict

    last = run.last_checkpoint()
    if not resume:
        if last is not None:
            raise MixfxError(f"{run.path}: already holds a run (checkpoints/last.pt); pass --resume to continue it or use a new folder")
        stale = run.path / "metrics.csv"
        if run.rt.is_main and stale.is_file():  # a start that died before its first checkpoint
            stale.unlink()
            logger.info("removed %s of an earlier start that left no checkpoint", stale)
        run.clean_temporaries()
        return 0, {}
    if last is None:
        raise MixfxError(f"{run.path}: nothing to resume (no checkpoints/last.pt)")
    ckpt = load_model_checkpoint(last, map_location=device)
    expected = "fxencoder" if type(model).__name__ == "FXEncoder" else "mixfxcloner"
    if ckpt.kind != expected or not isinstance(ckpt.extra, dict) or "train_config" not in ckpt.extra:
        what = f"a {ckpt.kind} checkpoint" + ("" if isinstance(ckpt.extra, dict) and "train_config" in ckpt.extra
                                               else " without a training state")
        raise MixfxError(f"{last}: {what}; --resume of this trainer needs a {expected} run's last.pt")
    run.clean_temporaries()
    saved = config_from_dict(type(config), ckpt.extra["train_config"])
    if saved != config:
        raise MixfxError(f"{last}: the run was started with another configuration; resume with the same options")
    model.load_state_dict(ckpt.state_dict)
    optimizer.load_state_dict(ckpt.optimizer)
    scheduler.load_state_dict(ckpt.scheduler)
    run.truncate_metrics(int(ckpt.step))
    logger.info("resuming %s at step %d", run.path, ckpt.step)
    return int(ckpt.step), dict(ckpt.extra)


def save_step_checkpoint(run: RunFolder, model, optimizer, scheduler, step: int, config, extra: dict) -> None:
    """Write ``checkpoints/step_<k>.pt`` and refresh ``last.pt`` (both atomic; rank 0 only)."""
    import shutil

    from mixfx.io.atomic import atomic_path
    from mixfx.io.checkpoint import save_model_checkpoint

    if not run.rt.is_main:
        return
    path = save_model_checkpoint(run.checkpoints / f"step_{step:07d}.pt", model, optimizer=optimizer, scheduler=scheduler,
                                 step=step, rng=rng_state(), extra={"train_config": config.to_dict(), **extra})
    with atomic_path(run.checkpoints / "last.pt") as tmp:
        shutil.copyfile(path, tmp)
