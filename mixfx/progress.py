"""Progress reporting: the one callback convention of every long-running ``mixfx`` / ``mixeval`` function.

A function that reports progress takes ``progress: Progress`` (``bool | ProgressFn | None``) and
calls a :class:`ProgressFn` as ``progress(done, total, label)``:

* ``done``, ``total``: absolute counts in the stage's own unit (windows, samples, stems, songs,
  items, steps …), ``0 ≤ done ≤ total``; ``done`` never decreases within a stage.
* ``label``: the stage (``"windows"``, ``"embed"``, ``"metrics"``, ``"train"`` …), optionally followed
  by ``": "`` and the current item or state (``"questions: song 3, vocals"``, ``"train: loss 0.4127"``).

:func:`progress_reporter` turns the argument into a callable :class:`ProgressReporter`: a given
callback is called as it is; ``True`` draws one tqdm bar per stage on stderr (the item after the
stage shown behind the bar; no bars when stderr is not a terminal); ``False`` / ``None`` does
nothing. Use it as a context manager (or call :meth:`ProgressReporter.close`) so the bars close.
A function handing progress on to another passes its reporter (a :class:`ProgressFn`) along; the
inner function's reporter then forwards to it (and closes nothing of it).
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Protocol, Union

__all__ = ["Progress", "ProgressFn", "ProgressReporter", "progress_reporter"]


class ProgressFn(Protocol):
    """``progress(done, total, label)``: absolute counts of the stage named by ``label`` (see the module)."""

    def __call__(self, done: int, total: int, label: str) -> None: ...


Progress = Union[bool, ProgressFn, None]
"""The type of a ``progress`` argument: ``True`` for tqdm bars, a :class:`ProgressFn`, or ``False`` / ``None``."""


class ProgressReporter:
    """A :class:`ProgressFn` that forwards to a callback, draws tqdm bars (one per stage), or does nothing."""

    def __init__(self, progress: Progress, unit: str | Mapping[str, str] = "it") -> None:
        self._callback = progress if callable(progress) else None
        self._draw = progress is True
        self._unit = unit
        self._bars: dict[str, Any] = {}

    def __call__(self, done: int, total: int, label: str) -> None:
        if self._callback is not None:
            self._callback(done, total, label)
        elif self._draw:
            stage, _, item = label.partition(": ")
            bar = self._bars.get(stage)
            if bar is None:
                from tqdm import tqdm

                unit = self._unit if isinstance(self._unit, str) else self._unit.get(stage, "it")
                bar = self._bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr, leave=False,
                                               disable=None, position=len(self._bars))  # None: off unless a terminal
            if bar.total != total:
                bar.total = total
            if item:
                bar.set_postfix_str(item, refresh=False)
            bar.update(done - bar.n)

    def close(self) -> None:
        """Close the bars (nothing to do for a callback or no progress)."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def __enter__(self) -> "ProgressReporter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_reporter(progress: Progress, *, unit: str | Mapping[str, str] = "it") -> ProgressReporter:
    """The reporter of a ``progress`` argument: the callback itself, tqdm bars for ``True``, or nothing.

    Args:
        progress: ``True``, a :class:`ProgressFn`, or ``False`` / ``None``.
        unit: the bars' unit, or one per stage (``{"embed": "item", "metrics": "set"}``; others ``"it"``).
    """
    return ProgressReporter(progress, unit)
