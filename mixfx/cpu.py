"""Facts about the CPU this process runs on: its vendor and model name (for kernel choices and reports).

Vectorised float kernels (MKL, oneDNN) take different code paths on Intel and AMD CPUs, so which
kernel is fastest, and the last bits of a result, depend on the vendor as well as on the instruction
set (``torch.backends.cpu.get_cpu_capability()``).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

__all__ = ["cpu_name", "cpu_vendor"]


@functools.cache
def _cpuinfo_field(name: str) -> str | None:
    """A field of ``/proc/cpuinfo`` (read once per field and process: it does not change)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_vendor() -> str:
    """``GenuineIntel`` / ``AuthenticAMD`` / … from ``/proc/cpuinfo`` (``unknown`` where there is none)."""
    return _cpuinfo_field("vendor_id") or "unknown"


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()
