"""A training run's folder: config, git revision, metrics, checkpoints; fresh start or resume.

Layout: ``config.json``, ``git_revision.txt``, ``metrics.csv`` (``step, kind, name, value``),
``tensorboard/``, ``checkpoints/`` (``step_<k>.pt`` and ``last.pt``). Only rank 0 writes, and every
file is written atomically. :func:`start_or_resume` restores model, optimizer and scheduler from
``last.pt`` and truncates ``metrics.csv`` to the checkpoint's step, so a resumed run's rows equal
those of an uninterrupted one. No RNG state is saved or restored: every batch and every FX draw
comes from a generator seeded by ``(seed, step, rank)`` (:func:`mixfx.train.batches.step_generator`),
and nothing draws from the global generators after the model is built (the model's weights are
restored), so resumption is exact without it.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mixfx.errors import MixfxError
from mixfx.io.atomic import atomic_path, atomic_write
from mixfx.train.distributed import Runtime

__all__ = ["RunFolder", "git_revision", "save_step_checkpoint", "start_or_resume"]

logger = logging.getLogger(__name__)


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
    from mixfx.io.checkpoint import save_model_checkpoint

    if not run.rt.is_main:
        return
    path = save_model_checkpoint(run.checkpoints / f"step_{step:07d}.pt", model, optimizer=optimizer, scheduler=scheduler,
                                 step=step, extra={"train_config": config.to_dict(), **extra})
    with atomic_path(run.checkpoints / "last.pt") as tmp:
        shutil.copyfile(path, tmp)
