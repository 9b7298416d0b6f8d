"""Seeded random generators: independent, reproducible streams named by tuples of integers.

``seeded_generator(a, b, c)`` seeds a CPU ``torch.Generator`` with the first 64-bit word of
``numpy.random.SeedSequence([a, b, c]).generate_state(1, uint64)``, masked to 63 bits. SeedSequence
hashes the whole tuple, so tuples that differ in any entry give unrelated streams (no hand-made
integer mixing whose collisions would correlate, e.g., step 1 of rank 0 with step 0 of rank 1).
"""

from __future__ import annotations

import numpy as np
import torch

from mixfx.errors import MixfxError

__all__ = ["seeded_generator"]


def seeded_generator(*ints: int) -> torch.Generator:
    """A CPU torch generator seeded from non-negative integers through ``numpy.random.SeedSequence``.

    Raises:
        MixfxError: a negative entry (SeedSequence takes non-negative integers only).
    """
    values = [int(i) for i in ints]
    if any(v < 0 for v in values):
        raise MixfxError(f"seeds must be non-negative integers, got {tuple(values)}")
    state = np.random.SeedSequence(values).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))
