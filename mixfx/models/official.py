"""Load the official FXencoder / MixFXcloner weights (and this project's checkpoints) into our modules.

The official files (``FXencoder_ps.pt``, ``MixFXcloner_ps.pt``; not bundled, see the README) are
``torch.save`` dicts ``{"model": state_dict, "optimizer": ..., "scheduler": ..., "epoch": ...}``
whose keys carry the ``module.`` prefix of DistributedDataParallel. The official loaders read only
``ckpt["model"]``, strip the prefix and load strictly; so do we, into the paper configurations.

Accepted layouts, detected automatically:

* the official dict (``"model"`` key), with or without ``module.`` prefixes;
* a bare state dict (``{name: tensor}``), also as saved from a DDP / ``torch.compile`` wrapper;
* a dict with a ``"state_dict"`` entry (PyTorch Lightning style);
* this project's checkpoints (:mod:`mixfx.io.checkpoint`), rebuilt with their stored config.

Files are read with ``weights_only=True``; ``allow_pickle=True`` retries with the unrestricted
unpickler for files that need it (only for files you trust).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, cast

import torch
from torch import nn

from mixfx.errors import MixfxError
from mixfx.io.checkpoint import ModelCheckpoint, checkpoint_from_object, is_model_checkpoint, torch_load
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

log = logging.getLogger(__name__)

_PREFIXES = ("module.", "_orig_mod.")
_NAMES = {"fxencoder": "FXencoder", "mixfxcloner": "MixFXcloner"}


def strip_prefixes(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Remove ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes shared by every key."""
    changed = True
    while changed and state_dict:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
                changed = True
    return state_dict


def detect_kind(state_dict: dict[str, Any]) -> str | None:
    """``"fxencoder"``, ``"mixfxcloner"`` or ``None``, from the (prefix-free) parameter names."""
    keys = set(state_dict)
    if "encoder.0.conv1.conv1d.conv1d.weight" in keys:
        return "fxencoder"
    if "blocks.0.film.film_fc.weight" in keys and "output.weight" in keys:
        return "mixfxcloner"
    return None


def describe_state_dict(state_dict: dict[str, Any]) -> str:
    """Human summary of which architecture a state dict looks like (for error messages)."""
    kind = detect_kind(state_dict)
    shape = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if kind == "fxencoder":
        idx = sorted({int(m.group(1)) for k in shape if (m := re.match(r"encoder\.(\d+)\.conv2\.conv1d\.conv1d\.weight$", k))})
        ws = [shape[f"encoder.{i}.conv2.conv1d.conv1d.weight"] for i in idx]
        return (f"an FXencoder with {len(ws)} blocks, channels {[w[0] for w in ws]}, "
                f"kernels {[w[2] for w in ws]}")
    if kind == "mixfxcloner":
        n = len({m.group(1) for k in shape if (m := re.match(r"blocks\.(\d+)\.conv1\.weight$", k))})
        w0 = shape.get("blocks.0.conv1.weight", (0, 0, 0))
        fc = shape.get("blocks.0.film.film_fc.weight", (0, 0))
        return (f"a MixFXcloner with {n} blocks, width {w0[0]}, kernel {w0[2]}, cond_dim {fc[1]}")
    sample = ", ".join(sorted(shape)[:3])
    return f"an unknown model ({len(shape)} tensors, e.g. {sample or 'none'})"


def extract_state_dict(obj: Any, path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelCheckpoint | None]:
    """Find the model weights in a loaded checkpoint object.

    Returns:
        ``(state_dict without prefixes, ModelCheckpoint or None)``; the second item is set for this
        project's own checkpoints.

    Raises:
        MixfxError: no state dict found.
    """
    if is_model_checkpoint(obj):
        ckpt = checkpoint_from_object(obj, path)
        return strip_prefixes(dict(ckpt.state_dict)), ckpt
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return strip_prefixes(dict(inner)), None
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return strip_prefixes(dict(obj)), None
        keys = sorted(str(k) for k in obj)[:8]
        raise MixfxError(f"{path}: no model weights found (top-level keys {keys}; expected 'model' or a state dict)")
    raise MixfxError(f"{path}: no model weights found (file holds a {type(obj).__name__}, expected a dict)")


def load_weights_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike,
                        kind: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with a one-line diagnosis on failure.

    Raises:
        MixfxError: missing / unexpected keys or shape mismatches; names the file, counts, one
            example of each, and the architecture the file looks like.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if mismatched:
            k = mismatched[0]
            parts.append(f"{len(mismatched)} shape mismatches (e.g. {k}: file {list(state_dict[k].shape)}, "
                         f"model {list(own[k].shape)})")
        raise MixfxError(
            f"{path}: weights do not fit the {_NAMES[kind]} {model.config}: {'; '.join(parts)}; "
            f"the file looks like {describe_state_dict(state_dict)}"
        )
    model.load_state_dict(state_dict, strict=True)


def model_from_checkpoint(ckpt: ModelCheckpoint, path: str | os.PathLike = "<checkpoint>") -> nn.Module:
    """Rebuild an FXEncoder / MixFXCloner from a :class:`ModelCheckpoint` (weights loaded, eval mode)."""
    if ckpt.kind == "fxencoder":
        model: nn.Module = FXEncoder(FXEncoderConfig.from_dict(ckpt.config))
    else:
        model = MixFXCloner(ClonerConfig.from_dict(ckpt.config))
    load_weights_strict(model, strip_prefixes(dict(ckpt.state_dict)), path, ckpt.kind)
    return model.eval()


def load_model(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    config: FXEncoderConfig | ClonerConfig | None = None,
    map_location: Any = "cpu",
    allow_pickle: bool = False,
) -> nn.Module:
    """Load an FXencoder or MixFXcloner from any accepted checkpoint layout (module docstring).

    Args:
        path: checkpoint file.
        kind: ``"fxencoder"`` / ``"mixfxcloner"`` to require; ``None`` detects it from the file.
        config: architecture for files that do not store one (official / bare state dicts);
            default the paper configuration. Ignored for this project's checkpoints.
        map_location: device for the tensors; the model is moved there when it is a device or str.
        allow_pickle: see :func:`mixfx.io.checkpoint.torch_load`.

    Returns:
        The model in eval mode.

    Raises:
        MixfxError: unreadable file, wrong kind, missing keys or shape mismatch.
    """
    if kind is not None and kind not in _NAMES:
        raise MixfxError(f"load_model: unknown kind {kind!r}; allowed: {sorted(_NAMES)}")
    obj = torch_load(path, map_location=map_location, allow_pickle=allow_pickle)
    state_dict, ckpt = extract_state_dict(obj, path)
    found = ckpt.kind if ckpt is not None else detect_kind(state_dict)
    want = kind or found
    if want is None:
        raise MixfxError(f"{path}: cannot tell the model type; the file looks like {describe_state_dict(state_dict)}")
    if found is not None and found != want:
        raise MixfxError(
            f"{path}: expected {_NAMES[want]} weights, but the file looks like {describe_state_dict(state_dict)}"
        )
    if ckpt is not None:
        model = model_from_checkpoint(ckpt, path)
    else:
        if want == "fxencoder":
            cfg = config if config is not None else FXEncoderConfig.paper()
            if not isinstance(cfg, FXEncoderConfig):
                raise MixfxError(f"{path}: an FXencoder needs an FXEncoderConfig, got {type(cfg).__name__}")
            model = FXEncoder(cfg)
        else:
            cfg = config if config is not None else ClonerConfig.paper()
            if not isinstance(cfg, ClonerConfig):
                raise MixfxError(f"{path}: a MixFXcloner needs a ClonerConfig, got {type(cfg).__name__}")
            model = MixFXCloner(cfg)
        load_weights_strict(model, state_dict, path, want)
    if isinstance(map_location, (str, torch.device)):
        model = model.to(map_location)
    log.info("loaded %s weights from %s", _NAMES[want], path)
    return model.eval()


def load_official_encoder(path: str | os.PathLike, *, map_location: Any = "cpu",
                          config: FXEncoderConfig | None = None, allow_pickle: bool = False) -> FXEncoder:
    """Load ``FXencoder_ps.pt`` (or any accepted layout) into an :class:`FXEncoder` in eval mode.

    Args:
        path: checkpoint file.
        map_location: device for the weights and model.
        config: architecture when the file does not store one; default :meth:`FXEncoderConfig.paper`.
        allow_pickle: allow the unrestricted unpickler (trusted files only).

    Raises:
        MixfxError: unreadable file, a MixFXcloner file, missing keys or shape mismatch.

    Example:
        >>> enc = load_official_encoder("weights/FXencoder_ps.pt")  # doctest: +SKIP
    """
    model = load_model(path, kind="fxencoder", config=config, map_location=map_location, allow_pickle=allow_pickle)
    return cast(FXEncoder, model)


def load_official_cloner(path: str | os.PathLike, *, map_location: Any = "cpu",
                         config: ClonerConfig | None = None, allow_pickle: bool = False) -> MixFXCloner:
    """Load ``MixFXcloner_ps.pt`` (or any accepted layout) into a :class:`MixFXCloner` in eval mode.

    Args:
        path: checkpoint file.
        map_location: device for the weights and model.
        config: architecture when the file does not store one; default :meth:`ClonerConfig.paper`.
        allow_pickle: allow the unrestricted unpickler (trusted files only).

    Raises:
        MixfxError: unreadable file, an FXencoder file, missing keys or shape mismatch.
    """
    model = load_model(path, kind="mixfxcloner", config=config, map_location=map_location, allow_pickle=allow_pickle)
    return cast(MixFXCloner, model)
