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

__all__ = ["StagedOutputs", "staged_outputs"]


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
