"""Model checkpoints of this project: one ``torch.save`` dict, written atomically.

Layout (``format_version`` 1)::

    {"format_version": 1, "kind": "fxencoder" | "mixfxcloner", "config": {...},
     "state_dict": {...}, "optimizer": ..., "scheduler": ..., "step": int, "rng": ..., "extra": {...}}

Everything except ``state_dict`` may be ``None``. Checkpoints are read with
``torch.load(weights_only=True)`` so loading never runs pickled code; keep ``rng`` and ``extra`` to
tensors and plain Python values (dict, list, str, int, float, bool, None) — e.g.
``generator.get_state()`` for a ``torch.Generator`` and ``rng.bit_generator.state`` for numpy.

This module sits below the models: it does not import them. :func:`save_model_checkpoint` takes any
module with a ``checkpoint_kind`` attribute and a ``config`` having ``to_dict()``
(:class:`mixfx.models.encoder.FXEncoder`, :class:`mixfx.models.cloner.MixFXCloner`);
:func:`mixfx.models.official.model_from_checkpoint` rebuilds the module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from mixfx.errors import MixfxError
from mixfx.io.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
KINDS = ("fxencoder", "mixfxcloner")


@dataclasses.dataclass
class ModelCheckpoint:
    """Contents of a checkpoint written by :func:`save_model_checkpoint`."""

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    optimizer: Any = None
    scheduler: Any = None
    step: int | None = None
    rng: Any = None
    extra: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION


def save_model_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | dict | None = None,
    scheduler: Any = None,
    step: int | None = None,
    rng: Any = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (and optional training state) atomically to ``path``.

    Args:
        path: destination (``.pt``); parent folders are created.
        model: an FXEncoder or MixFXCloner (anything with ``checkpoint_kind`` and ``config.to_dict()``);
            a ``DistributedDataParallel`` / ``torch.compile`` wrapper is unwrapped.
        optimizer: an optimizer or its ``state_dict()``.
        scheduler: an LR scheduler or its ``state_dict()``.
        step: training step (iteration) count.
        rng: generator states (tensors / plain values).
        extra: anything else JSON-like (history, run arguments).

    Returns:
        ``Path(path)``.

    Raises:
        MixfxError: ``model`` has no ``checkpoint_kind`` / ``config``.
    """
    inner = model
    for attr in ("module", "_orig_mod"):  # DistributedDataParallel / torch.compile wrappers
        wrapped = getattr(inner, attr, None)
        if isinstance(wrapped, torch.nn.Module):
            inner = wrapped
    kind = getattr(inner, "checkpoint_kind", None)
    config = getattr(inner, "config", None)
    if kind not in KINDS or not hasattr(config, "to_dict"):
        raise MixfxError(
            f"{path}: cannot checkpoint a {type(inner).__name__}; expected a model with checkpoint_kind in {KINDS}"
        )
    obj = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in inner.state_dict().items()},
        "optimizer": optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer,
        "scheduler": scheduler.state_dict() if hasattr(scheduler, "state_dict") else scheduler,
        "step": step,
        "rng": rng,
        "extra": extra,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    log.info("saved %s checkpoint %s (step %s)", kind, path, step)
    return path


def torch_load(path: str | os.PathLike, *, map_location: Any = "cpu", allow_pickle: bool = False) -> Any:
    """``torch.load`` with file checks and one-line :class:`MixfxError` messages.

    Args:
        path: a file written by ``torch.save``.
        map_location: passed to ``torch.load``.
        allow_pickle: retry with ``weights_only=False`` if the safe loader refuses the file; this
            runs pickled code from the file, so only for files you trust.

    Raises:
        MixfxError: missing file, not a torch file / corrupt, or unsafe content without ``allow_pickle``.
    """
    path = Path(path)
    if not path.exists():
        raise MixfxError(f"{path}: checkpoint file not found")
    if not path.is_file():
        raise MixfxError(f"{path}: expected a checkpoint file, got a directory or special file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise MixfxError(f"{path}: not a readable torch checkpoint ({_reason(exc)})") from exc
        if not allow_pickle:
            raise MixfxError(
                f"{path}: checkpoint holds Python objects that the safe loader refuses ({_reason(exc)}); "
                f"pass allow_pickle=True only if you trust the file"
            ) from exc
        log.warning("%s: loading with weights_only=False (allow_pickle=True)", path)
    except Exception as exc:  # noqa: BLE001 - torch.load raises KeyError, RuntimeError, EOFError... on junk
        raise MixfxError(f"{path}: not a readable torch checkpoint ({_reason(exc)})") from exc
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - same for the unrestricted unpickler
        raise MixfxError(f"{path}: not a readable torch checkpoint ({_reason(exc)})") from exc


def is_model_checkpoint(obj: Any) -> bool:
    """Whether a loaded object has this module's checkpoint layout."""
    return isinstance(obj, dict) and "format_version" in obj and "kind" in obj and "state_dict" in obj


def load_model_checkpoint(
    path: str | os.PathLike, *, map_location: Any = "cpu", allow_pickle: bool = False
) -> ModelCheckpoint:
    """Read a checkpoint written by :func:`save_model_checkpoint`.

    Args:
        path: the ``.pt`` file.
        map_location: passed to ``torch.load`` (tensors land there).
        allow_pickle: see :func:`torch_load`.

    Returns:
        A :class:`ModelCheckpoint`.

    Raises:
        MixfxError: unreadable file, another layout (e.g. an official checkpoint: use
            :mod:`mixfx.models.official`), or a newer ``format_version``.
    """
    obj = torch_load(path, map_location=map_location, allow_pickle=allow_pickle)
    return checkpoint_from_object(obj, path)


def checkpoint_from_object(obj: Any, path: str | os.PathLike) -> ModelCheckpoint:
    """Validate a loaded object as a :class:`ModelCheckpoint` (``path`` is for messages only)."""
    if not is_model_checkpoint(obj):
        raise MixfxError(
            f"{path}: not a mixfx model checkpoint (expected keys format_version, kind, state_dict)"
        )
    version = obj["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise MixfxError(f"{path}: checkpoint format_version {version!r}; this mixfx reads up to {FORMAT_VERSION}")
    if obj["kind"] not in KINDS:
        raise MixfxError(f"{path}: unknown checkpoint kind {obj['kind']!r}; allowed: {KINDS}")
    return ModelCheckpoint(
        kind=obj["kind"],
        config=dict(obj.get("config") or {}),
        state_dict=obj["state_dict"],
        optimizer=obj.get("optimizer"),
        scheduler=obj.get("scheduler"),
        step=obj.get("step"),
        rng=obj.get("rng"),
        extra=obj.get("extra"),
        format_version=version,
    )


def _reason(exc: BaseException) -> str:
    """A short one-line reason: the 'Unsupported global' detail, else the first message line."""
    text = str(exc)
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if m:
        return f"unsupported global {m.group(1)}"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__
