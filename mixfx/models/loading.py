"""Model loading: every FXencoder / MixFXcloner checkpoint goes through here, and the device it runs on.

Entry points (all return models in eval mode and raise :class:`~mixfx.errors.MixfxError` with one
line naming the file and the problem):

* :func:`load_encoder` / :func:`load_cloner` — one model of a known kind;
* :func:`load_models` — an encoder and a cloner for style transfer, checked to fit together;
* :func:`load_model` — either kind, detected from the file;
* :func:`load_model_and_metadata` — the one function that reads a file: the model plus this
  project's checkpoint record (``extra`` holds e.g. the run's ``label``).

Accepted layouts, detected automatically:

* this project's checkpoints (:mod:`mixfx.io.checkpoint`), rebuilt with their stored config;
* the official ``FXencoder_ps.pt`` / ``MixFXcloner_ps.pt`` (not bundled, see the README):
  ``torch.save`` dicts ``{"model": state_dict, "optimizer": ..., "epoch": ...}`` whose keys carry
  DistributedDataParallel's ``module.`` prefix; like the official loaders we read ``ckpt["model"]``,
  strip the prefix and load strictly, into the paper configuration unless ``config`` says otherwise;
* a bare state dict (``{name: tensor}``), also as saved from a DDP / ``torch.compile`` wrapper;
* a dict with a ``"state_dict"`` entry (PyTorch Lightning style).

Files are read with ``weights_only=True``; ``allow_pickle=True`` retries with the unrestricted
unpickler for files that need it (only for files you trust).

Helpers shared with other loaders (the HDemucs separator in :mod:`mixfx.models.separation`):
:func:`find_state_dict`, :func:`strip_prefixes` and :func:`load_state_dict_strict`, the strict
load that explains a failure (missing / unexpected keys, shape mismatches) in one line.
:func:`resolve_device` turns a user's device choice into a :class:`torch.device`.
"""

from __future__ import annotations

import dataclasses
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

__all__ = [
    "LoadedModel", "describe_state_dict", "detect_kind", "find_state_dict", "load_cloner", "load_encoder",
    "load_model", "load_model_and_metadata", "load_models", "load_state_dict_strict", "model_from_checkpoint",
    "resolve_device", "strip_prefixes",
]

_PREFIXES = ("module.", "_orig_mod.")
_NAMES = {"fxencoder": "FXencoder", "mixfxcloner": "MixFXcloner"}
_ARTICLES = {"fxencoder": "an", "mixfxcloner": "a"}


# ------------------------------------------------------------------------------------------ device


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device a user asked for: ``None`` or ``"auto"`` → CUDA when available, else CPU.

    Any other string or :class:`torch.device` is parsed and checked (CUDA must be present).

    Raises:
        MixfxError: an unparsable device, or CUDA asked for where there is none.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise MixfxError(f"device {device!r}: not a torch device ({err})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise MixfxError(f"device {parsed}: CUDA is not available here; use cpu")
    return parsed


# ------------------------------------------------------------------------------ state dict helpers


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


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                      for k, v in obj.items())


def find_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The weights in a loaded file, prefixes stripped, or ``None``.

    Looks, in this order, at ``obj["model"]`` (official), ``obj["state_dict"]`` (Lightning) and
    ``obj`` itself (a bare state dict); the first non-empty ``{str: tensor}`` dict wins.
    """
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if _is_tensor_dict(obj.get(key)):
                return strip_prefixes(dict(obj[key]))
    return strip_prefixes(dict(obj)) if _is_tensor_dict(obj) else None


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


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike,
                           *, model_name: str, looks_like: str | None = None) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with a one-line diagnosis on failure.

    Args:
        model: the module to fill.
        state_dict: prefix-free weights.
        path: the file they came from (for the message).
        model_name: what ``model`` is, e.g. ``"the FXencoder FXEncoderConfig(...)"``.
        looks_like: optional description of what the file holds (appended to the message).

    Raises:
        MixfxError: ``"{path}: weights do not fit {model_name}: N missing keys (e.g. k); M
            unexpected keys (e.g. k); K shape mismatches (e.g. k: file [..], model [..])[; the file
            looks like ...]"``.
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
        tail = f"; the file looks like {looks_like}" if looks_like else ""
        raise MixfxError(f"{path}: weights do not fit {model_name}: {'; '.join(parts)}{tail}")
    model.load_state_dict(state_dict, strict=True)


def _load_fx_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], path, kind: str) -> None:
    load_state_dict_strict(model, state_dict, path, model_name=f"the {_NAMES[kind]} {model.config}",
                           looks_like=describe_state_dict(state_dict))


# ----------------------------------------------------------------------------------------- loaders


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model read from a file, with what the file said about it.

    Attributes:
        model: the FXEncoder / MixFXCloner, weights loaded, in eval mode.
        kind: ``"fxencoder"`` or ``"mixfxcloner"``.
        checkpoint: this project's checkpoint record (config, step, ``extra``), or ``None`` for the
            official and bare layouts.
    """

    model: nn.Module
    kind: str
    checkpoint: ModelCheckpoint | None = None

    @property
    def label(self) -> str | None:
        """``extra["label"]`` of this project's checkpoints (set by ``mixfx train-encoder``), else None."""
        extra = self.checkpoint.extra if self.checkpoint is not None else None
        label = extra.get("label") if isinstance(extra, dict) else None
        return label if isinstance(label, str) else None


def model_from_checkpoint(ckpt: ModelCheckpoint, path: str | os.PathLike = "<checkpoint>") -> nn.Module:
    """Rebuild an FXEncoder / MixFXCloner from a :class:`ModelCheckpoint` (weights loaded, eval mode)."""
    if ckpt.kind == "fxencoder":
        model: nn.Module = FXEncoder(FXEncoderConfig.from_dict(ckpt.config))
    else:
        model = MixFXCloner(ClonerConfig.from_dict(ckpt.config))
    _load_fx_weights(model, strip_prefixes(dict(ckpt.state_dict)), path, ckpt.kind)
    return model.eval()


def _model_for_layout(kind: str, config, path) -> nn.Module:
    """The architecture for a file that stores none: ``config``, default the paper's."""
    cls, cfg_cls = (FXEncoder, FXEncoderConfig) if kind == "fxencoder" else (MixFXCloner, ClonerConfig)
    cfg = config if config is not None else cfg_cls.paper()
    if not isinstance(cfg, cfg_cls):
        raise MixfxError(f"{path}: {_ARTICLES[kind]} {_NAMES[kind]} needs a {cfg_cls.__name__}, got {type(cfg).__name__}")
    return cls(cfg)


def load_model_and_metadata(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    config: FXEncoderConfig | ClonerConfig | None = None,
    map_location: Any = "cpu",
    allow_pickle: bool = False,
) -> LoadedModel:
    """Read an FXencoder or MixFXcloner from any accepted layout (module docstring).

    Args:
        path: checkpoint file.
        kind: ``"fxencoder"`` / ``"mixfxcloner"`` to require; ``None`` detects it from the file.
        config: architecture for files that do not store one (official / bare state dicts);
            default the paper configuration. Ignored for this project's checkpoints.
        map_location: device for the tensors; the model is moved there when it is a device or str.
        allow_pickle: see :func:`mixfx.io.checkpoint.torch_load`.

    Raises:
        MixfxError: unreadable file, no weights, wrong kind, missing keys or shape mismatch.
    """
    if kind is not None and kind not in _NAMES:
        raise MixfxError(f"load_model: unknown kind {kind!r}; allowed: {sorted(_NAMES)}")
    obj = torch_load(path, map_location=map_location, allow_pickle=allow_pickle)
    ckpt = checkpoint_from_object(obj, path) if is_model_checkpoint(obj) else None
    state_dict = strip_prefixes(dict(ckpt.state_dict)) if ckpt is not None else find_state_dict(obj)
    if state_dict is None:
        what = f"top-level keys {sorted(str(k) for k in obj)[:8]}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise MixfxError(f"{path}: no model weights found (file holds {what}; expected 'model' or a state dict)")
    found = ckpt.kind if ckpt is not None else detect_kind(state_dict)
    want = kind or found
    if want is None:
        raise MixfxError(f"{path}: cannot tell the model type; the file looks like {describe_state_dict(state_dict)}")
    if found is not None and found != want:
        raise MixfxError(f"{path}: expected {_ARTICLES[want]} {_NAMES[want]}, but the file looks like "
                         f"{describe_state_dict(state_dict)}")
    if ckpt is not None:
        model = model_from_checkpoint(ckpt, path)
    else:
        model = _model_for_layout(want, config, path)
        _load_fx_weights(model, state_dict, path, want)
    if isinstance(map_location, (str, torch.device)):
        model = model.to(map_location)
    log.info("loaded %s weights from %s", _NAMES[want], path)
    return LoadedModel(model.eval(), want, ckpt)


def load_model(path: str | os.PathLike, *, kind: str | None = None,
               config: FXEncoderConfig | ClonerConfig | None = None, map_location: Any = "cpu",
               allow_pickle: bool = False) -> nn.Module:
    """The model of :func:`load_model_and_metadata` (same arguments), in eval mode."""
    return load_model_and_metadata(path, kind=kind, config=config, map_location=map_location,
                                   allow_pickle=allow_pickle).model


def load_encoder(path: str | os.PathLike, *, map_location: Any = "cpu",
                 config: FXEncoderConfig | None = None, allow_pickle: bool = False) -> FXEncoder:
    """An :class:`FXEncoder` from any accepted layout (ours, ``FXencoder_ps.pt``, bare), in eval mode.

    Args:
        path: checkpoint file.
        map_location: device for the weights and model.
        config: architecture when the file does not store one; default :meth:`FXEncoderConfig.paper`.
        allow_pickle: allow the unrestricted unpickler (trusted files only).

    Raises:
        MixfxError: unreadable file, a MixFXcloner file, missing keys or shape mismatch.

    Example:
        >>> enc = load_encoder("weights/FXencoder_ps.pt")  # doctest: +SKIP
    """
    model = load_model(path, kind="fxencoder", config=config, map_location=map_location, allow_pickle=allow_pickle)
    return cast(FXEncoder, model)


def load_cloner(path: str | os.PathLike, *, map_location: Any = "cpu",
                config: ClonerConfig | None = None, allow_pickle: bool = False) -> MixFXCloner:
    """A :class:`MixFXCloner` from any accepted layout (ours, ``MixFXcloner_ps.pt``, bare), in eval mode.

    Args and Raises as :func:`load_encoder` (an FXencoder file is the wrong kind here); ``config``
    defaults to :meth:`ClonerConfig.paper`.
    """
    model = load_model(path, kind="mixfxcloner", config=config, map_location=map_location, allow_pickle=allow_pickle)
    return cast(MixFXCloner, model)


def load_models(encoder_path: str | os.PathLike, cloner_path: str | os.PathLike, *,
                device: str | torch.device | None = None) -> tuple[FXEncoder, MixFXCloner]:
    """An FXencoder and a MixFXcloner (any layout) on ``device`` (default CPU), both in eval mode.

    Raises:
        MixfxError: unreadable checkpoints, wrong kinds, or cloner ``cond_dim`` ≠ encoder ``dim``.
    """
    encoder = load_encoder(encoder_path, map_location=device)
    cloner = load_cloner(cloner_path, map_location=device)
    if cloner.config.cond_dim != encoder.dim:
        raise MixfxError(f"{cloner_path}: the MixFXcloner is conditioned on {cloner.config.cond_dim}-d embeddings, but "
                         f"the FXencoder {encoder_path} gives {encoder.dim}-d ones; use the encoder it was trained with")
    return encoder, cloner
