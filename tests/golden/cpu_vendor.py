"""Which CPU vendor a golden test runs on: the recordings hold bit for bit (or to 1e-6) only on the
kind of CPU that made them.

Vectorised float kernels (MKL, oneDNN, the FFT) take different code paths on Intel and AMD CPUs,
so sums are accumulated in a different order and the last bits differ. Deterministic outputs stay
within ~1e-5 relative; a few training steps with Adam amplify that (Adam's normalised step turns a
near-zero gradient's rounding into a full ±lr step), to ~1e-3 of the loss and of the weight sums.
"""

from __future__ import annotations

from mixfx.cpu import cpu_vendor

RECORDED_ON = "GenuineIntel"  # every run on Intel Xeons up to 2026-12-02 (CI included) reproduced the recordings


def same_cpu_as_recording() -> bool:
    return cpu_vendor() == RECORDED_ON
