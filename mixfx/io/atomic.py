"""Atomic file writes: write to a temporary file in the same folder, fsync, then ``os.replace``.

``tempfile.mkstemp``/``mkdtemp`` create 0600 files and 0700 folders, and the rename keeps
that mode, so outputs would be private whatever the user's umask says (a web server running
as another user could not read a generated listening test). Before the rename the temporary
file gets ``0o666 & ~umask`` and the temporary folder ``0o777 & ~umask``: the modes ``open``
and ``mkdir`` would have given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

FILE_MODE = 0o666
DIR_MODE = 0o777


def current_umask() -> int:
    """Return the process umask without changing it when the platform allows.

    Linux exposes it as the ``Umask:`` line of ``/proc/self/status``; elsewhere it is read
    with ``os.umask(0)`` and restored at once (a brief window in which another thread's new
    files would get mode 0666).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _apply_umask(path: str | os.PathLike, base: int) -> None:
    """Give ``path`` the mode ``base & ~umask`` (``base``: 0o666 for files, 0o777 for folders)."""
    os.chmod(path, base & ~current_umask())


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is left untouched, so a
    reader never sees a half-written output.

    Args:
        path: final destination.
        mode: ``"wb"`` or ``"w"`` (text).
        **open_kwargs: passed to :func:`open` (e.g. ``encoding``, ``newline``).

    Example:
        >>> with atomic_write("table.csv", "w") as f:  # doctest: +SKIP
        ...     f.write("a,b\\n")
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``path`` for libraries that write by file name.

    The temporary file keeps ``path``'s suffix (so format detection by extension works) and
    replaces ``path`` only when the block finishes without error. The result has mode
    ``0o666 & ~umask``, as a plain ``open`` would give (not ``mkstemp``'s 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _apply_umask(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder in a temporary sibling, then rename it to ``path`` (replacing an old one).

    Used for multi-file outputs (a listening test, a dataset) so that a failed run leaves
    nothing half-written. The folder gets mode ``0o777 & ~umask``, as ``mkdir`` would give
    (not ``mkdtemp``'s 0700).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        _apply_umask(tmp, DIR_MODE)
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
