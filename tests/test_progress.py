"""The one progress convention (mixfx.progress): callbacks pass through, True draws tqdm bars, else nothing."""

from __future__ import annotations

import io
import sys

from mixfx.progress import ProgressReporter, progress_reporter


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so tqdm draws."""

    def isatty(self) -> bool:
        return True


def test_a_callback_gets_every_call_unchanged_and_close_leaves_it_alone():
    calls = []
    with progress_reporter(lambda *call: calls.append(call)) as report:
        assert isinstance(report, ProgressReporter)
        report(0, 3, "embed")
        report(2, 3, "embed: song 1")
        inner = progress_reporter(report)  # a reporter handed on forwards to the outer one
        inner(1, 1, "metrics")
        inner.close()
        report(3, 3, "embed")
    assert calls == [(0, 3, "embed"), (2, 3, "embed: song 1"), (1, 1, "metrics"), (3, 3, "embed")]


def test_false_and_none_report_nothing(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    for off in (False, None):
        with progress_reporter(off) as report:
            report(1, 2, "windows")
    assert err.getvalue() == ""


def test_true_draws_one_bar_per_stage_on_a_terminal(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with progress_reporter(True, unit={"windows": "window"}) as report:
        report(0, 5, "windows")
        report(3, 5, "windows: song A")
        report(5, 5, "windows")
        report(2, 4, "metrics")
        bars = dict(report._bars)
    text = err.getvalue()
    assert set(bars) == {"windows", "metrics"}  # the item after ": " is not a new stage
    assert (bars["windows"].n, bars["windows"].total, bars["metrics"].n, bars["metrics"].total) == (5, 5, 2, 4)
    assert bars["windows"].postfix == "song A"  # drawn behind the bar at its next refresh
    # each bar is drawn when it starts (later draws are rate-limited by tqdm), on stderr
    assert "windows:   0%" in text and "0/5" in text and "window/s" in text and "metrics:" in text and "it/s" in text


def test_true_draws_nothing_when_stderr_is_not_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with progress_reporter(True) as report:
        report(1, 2, "windows")
        report(2, 3, "windows: song B")  # a new total and an item on a disabled bar are fine too
    assert err.getvalue() == ""
