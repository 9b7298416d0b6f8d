"""Package ``__init__`` files: every listed public name resolves, lazily, and importing stays cheap."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ["mixfx.models", "mixfx.io", "mixfx.losses", "mixfx.pipelines", "mixeval.metrics", "mixeval.pipelines",
            "mixeval.tables", "mixeval.plots", "mixeval.listening"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_and_none_is_a_submodule(name):
    pkg = importlib.import_module(name)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert pkg.__all__ and not set(pkg.__all__) & submodules  # an imported submodule would shadow the name
    for public in pkg.__all__:
        value = getattr(pkg, public)
        assert getattr(value, "__name__", public) == public, (name, public)
        assert public in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr(pkg, "nope")


def test_importing_the_packages_loads_no_torch_or_numpy():
    code = ("import sys, mixfx, mixeval, " + ", ".join(PACKAGES) +
            "; print(sorted(m for m in ('torch', 'numpy', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
