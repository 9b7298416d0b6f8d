"""Lazy re-exports for package ``__init__`` files (PEP 562), so ``import mixfx`` stays cheap.

A package lists its public names per submodule, ``{"loading": ("load_encoder", ...)}``; the
submodule is imported on first access of the name (``from mixfx.models import load_encoder`` or ``mixfx.models.load_encoder``),
not when the package is imported. Names must differ from the package's submodule names (an
imported submodule would shadow them).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Sequence


def lazy_exports(package: str, names: Mapping[str, Sequence[str]]
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``; ``names`` maps a submodule to its public names.

    Example:
        >>> __all__, __getattr__, __dir__ = lazy_exports(__name__, {"loading": ("load_encoder",)})  # doctest: +SKIP
    """
    exports = {name: f"{package}.{module}" for module, group in names.items() for name in group}

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

    return sorted(exports), __getattr__, __dir__
