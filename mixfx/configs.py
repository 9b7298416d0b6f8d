"""Rebuilding config dataclasses from their JSON-friendly dicts (checkpoints, run folders)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from mixfx.errors import MixfxError

T = TypeVar("T")


def config_from_dict(cls: type[T], d: dict[str, Any]) -> T:
    """Inverse of a config's ``to_dict``: lists become tuples again; unknown keys raise :class:`MixfxError`."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise MixfxError(f"{cls.__name__}: unknown keys {unknown}; allowed: {sorted(names)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
