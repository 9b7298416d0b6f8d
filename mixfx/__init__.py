"""mixfx: music mixing style transfer — FX chain, FX normalization, models and training."""

import os as _os

# The compiled FX kernels (numba) and torch each keep a thread pool; with OpenMP's default
# busy-waiting the idle pool spins and steals the cores the other one needs (a 5-10x slowdown on
# small machines). Passive waiting avoids that. It only takes effect when mixfx is imported before
# torch (the CLIs and the tests do); set OMP_WAIT_POLICY yourself to choose otherwise.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Audio batches are tens of MB; torch's CPU allocator then gets fresh pages from the kernel for
# every temporary, and the page faults cost more than the arithmetic (2x on the FX chain).
# Transparent huge pages for large tensors (a documented torch switch) cut the faults 512-fold.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from mixfx.errors import MixfxError

SAMPLE_RATE = 44100
"""The project's working sample rate (Hz): every model and FX default assumes it."""

STEMS = ("drums", "bass", "other", "vocals")
"""The four MUSDB18 stems, in the project's canonical order."""

__version__ = "0.1.0"
__all__ = ["MixfxError", "SAMPLE_RATE", "STEMS", "__version__"]
