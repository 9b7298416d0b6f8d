"""mixfx: music mixing style transfer (Koo et al., ICASSP 2023) — FX chain, FX normalization, models, training.

Subpackages (data flows one way: ``cli`` → ``pipelines`` → core → ``io``):
    fx         the FXmanipulator: effects, parameter ranges, the chain, FX normalization.
    data       MUSDB18-HQ-layout datasets, the built-in synthetic set, contrastive pairs.
    models     FXencoder Φ, MixFXcloner Ψ, style transfer, checkpoint loading (:mod:`mixfx.models.loading`).
    losses     NT-Xent (DirectCLR) and the L/R/M/S multi-scale spectral loss.
    train      training configs, the loop (resume, DDP), probability scheduling.
    pipelines  one function per ``mixfx`` command.
    io         files: audio, atomic writes, checkpoints, hashes, output checks.
    progress   the one progress-callback convention (``ProgressFn``, ``progress_reporter``), both packages'.
    cli        the ``mixfx`` command (typer).

This module holds the project constants (:data:`SAMPLE_RATE`, :data:`STEMS`) and
:class:`MixfxError`; importing it loads neither torch nor numpy.

Side effect: ``import mixfx`` sets two environment variables for the whole process, each only
when it is not set already (``os.environ.setdefault``; set them yourself to choose otherwise):

* ``OMP_WAIT_POLICY=PASSIVE`` — the numba FX kernels and torch each keep an OpenMP thread pool;
  with OpenMP's default busy-waiting the idle pool spins and steals the cores the other one needs
  (5-10x slower on small machines). OpenMP reads the variable when its runtime loads, i.e. when
  torch is imported, so it cannot wait until the kernels first run: it must be set before torch.
  The CLIs, the tests and the benchmarks import mixfx first; a program that imports torch first
  keeps OpenMP's default.
* ``THP_MEM_ALLOC_ENABLE=1`` — torch's CPU allocator then uses transparent huge pages for large
  tensors; audio batches are tens of MB and the page faults of fresh allocations cost more than
  the arithmetic (2x on the FX chain). torch reads it once, at its first large allocation.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see "Side effect" in the module docstring
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from mixfx.errors import MixfxError

SAMPLE_RATE = 44100
"""The project's working sample rate (Hz): every model and FX default assumes it."""

STEMS = ("drums", "bass", "other", "vocals")
"""The four MUSDB18 stems, in the project's canonical order."""

__version__ = "0.1.0"
__all__ = ["MixfxError", "SAMPLE_RATE", "STEMS", "__version__"]
