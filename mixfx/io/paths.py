"""Output paths checked before any work, and OS errors turned into one-line messages.

Every command checks where it will write before it reads or computes anything
(:func:`check_output_dir`, :func:`check_output_file`), so a typo in ``-o`` costs a second, not a
training run; and an :class:`OSError` that still happens while writing (disk full, permissions
changed meanwhile) reaches the user as ``path: reason`` (:func:`os_error_message`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from mixfx.errors import MixfxError

__all__ = ["check_output_dir", "check_output_file", "os_error_message"]


def _writable_parent(path: Path, option: str) -> None:
    probe = path.parent if not path.exists() else path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise MixfxError(f"{path}: {option} lies under {probe}, which is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise MixfxError(f"{path}: {option} cannot be written ({probe} is not writable)")


def check_output_dir(path: str | os.PathLike, *, option: str = "output folder",
                     inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse an output folder that exists as a file, cannot be created or written, or lies inside an input folder.

    Returns:
        ``path`` as a :class:`~pathlib.Path` (nothing is created).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MixfxError(f"{path}: {option} exists and is not a folder")
    _writable_parent(path, option)
    resolved = path.resolve()
    for src in inputs:
        src = Path(src).resolve()
        if src.is_dir() and (resolved == src or src in resolved.parents):
            raise MixfxError(f"{path}: {option} must not be inside the input folder {src}")
    return path


def check_output_file(path: str | os.PathLike, *, option: str = "output file", overwrite: bool = True) -> Path:
    """Refuse an output file that exists as a folder (or at all, unless ``overwrite``) or cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise MixfxError(f"{path}: {option} is an existing folder; give a file name")
    if path.exists() and not overwrite:
        raise MixfxError(f"{path}: {option} exists (pass --overwrite to replace it)")
    _writable_parent(path, option)
    return path


def os_error_message(err: OSError) -> str:
    """``"<path>: <reason>"`` of an OS error (both paths of a failed rename)."""
    where = err.filename if err.filename is not None else ""
    if getattr(err, "filename2", None):
        where = f"{where} → {err.filename2}"
    reason = err.strerror or str(err)
    return f"{where}: {reason}" if where else reason
