"""Publish a command's result files all at once: stage them in a hidden folder, then move them in.

Used by ``mixeval disentangle`` and ``mixeval table2``: a failure while writing leaves the output
folder as it was (no half-written result set); on success every staged file replaces its namesake.

Example:
    >>> with staged_outputs(out_dir) as staging:        # doctest: +SKIP
    ...     (staging / "table.csv").write_text("...")
    >>> # now out_dir/table.csv exists
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["StagedOutputs", "locks_output", "output_lock", "software_versions", "staged_outputs"]


def software_versions() -> dict[str, str]:
    """Versions of Python and the libraries the results depend on (for ``run.json`` and reports)."""
    import platform

    import numpy
    import scipy
    import sklearn
    import torch

    import mixfx

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "mixfx": getattr(mixfx, "__version__", "0.1.0")}


class StagedOutputs:
    """A staging folder and, after publishing, the files that landed (``files``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []

    def __truediv__(self, other: str) -> Path:
        return self.folder / other


@contextlib.contextmanager
def staged_outputs(out_dir: str | os.PathLike, *, replace_folders: Sequence[str] = (), prefix: str = ".staging.") -> Iterator[StagedOutputs]:
    """Yield a :class:`StagedOutputs` inside ``out_dir``; on success move its files into ``out_dir``.

    Args:
        out_dir: the output folder (created if missing).
        replace_folders: sub-folders of ``out_dir`` removed before publishing when the staging has them
            (so stale files of an older run do not mix with the new ones).
        prefix: name prefix of the hidden staging folder.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = StagedOutputs(Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=out_dir)))
    try:
        yield staging
        for name in replace_folders:
            if (staging.folder / name).is_dir() and (out_dir / name).exists():
                shutil.rmtree(out_dir / name)
        for path in sorted(p for p in staging.folder.rglob("*") if p.is_file()):
            target = out_dir / path.relative_to(staging.folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            staging.files.append(target)
    finally:
        shutil.rmtree(staging.folder, ignore_errors=True)


def _lock_path(out_dir: Path) -> Path:
    import hashlib

    key = hashlib.sha256(str(out_dir.resolve()).encode("utf-8")).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / "mixeval-locks" / f"{key}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def output_lock(out_dir: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for one run; a second run into it fails with one line.

    The lock is a file in the system's temporary folder named after the resolved path (so a refused
    or failed run leaves nothing in the user's folders); a lock whose process is gone is taken over.

    Raises:
        MixevalError: another live process holds the folder.
    """
    from mixeval.errors import MixevalError

    out_dir = Path(out_dir)
    lock = _lock_path(out_dir)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise MixevalError(f"{out_dir}: in use by another run (process {pid}); wait for it or choose another --out") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise MixevalError(f"{out_dir}: could not lock the output folder ({lock})")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def locks_output(fn):
    """Decorator: run ``fn`` under :func:`output_lock` of its ``out_dir`` argument (signature kept)."""
    import functools
    import inspect

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out_dir = signature.bind(*args, **kwargs).arguments["out_dir"]
        with output_lock(out_dir):
            return fn(*args, **kwargs)

    return wrapper
