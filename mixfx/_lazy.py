"""Lazy re-exports for package ``__init__`` files (PEP 562), so ``import mixfx`` stays cheap.

A package lists its public names as ``{name: "package.module"}``; the module is imported on first
access of the name (``from mixfx.models import load_encoder`` or ``mixfx.models.load_encoder``),
not when the package is imported. Names must differ from the package's submodule names (an
imported submodule would shadow them).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``exports[name]`` on first use.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"load_encoder": "mixfx.models.loading"})  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
