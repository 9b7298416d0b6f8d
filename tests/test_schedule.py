"""Probability scheduling: no rescheduling on noise, harder effects applied more often; the schedule plot."""

from __future__ import annotations

import csv
import math

import pytest

from mixeval.errors import MixevalError
from mixeval.plots.schedule import plot_schedule, read_schedule
from mixfx.errors import MixfxError
from mixfx.fx.params import FX_NAMES, FXProbabilities
from mixfx.train.schedule import chance_loss, losses_separated, losses_to_probabilities, scheduled_probabilities

CHANCE_16 = math.log(15)  # 8 pairs → 16 items, 15 candidates each


def test_chance_loss_is_log_of_candidates():
    assert chance_loss(8) == pytest.approx(2.70805020110221)  # ln 15 by hand
    with pytest.raises(MixfxError, match="at least 2 pairs"):
        chance_loss(1)


def test_step0_noise_is_not_scheduled():
    # the untrained encoder's losses at step 0 (issue 10): 2e-4 apart around ln 15
    step0 = dict(zip(FX_NAMES, [2.70785, 2.70805, 2.70790, 2.70800, 2.70795, 2.70788]))
    assert not losses_separated(step0, chance_loss=CHANCE_16)
    p = losses_to_probabilities(step0, chance_loss=CHANCE_16)
    assert set(p.values()) == {0.55}  # equal: the midpoint of [0.1, 1]
    previous = {fx: 0.2 + 0.1 * i for i, fx in enumerate(FX_NAMES)}
    assert losses_to_probabilities(step0, chance_loss=CHANCE_16, previous=previous) == previous
    current = FXProbabilities()
    assert scheduled_probabilities(FXProbabilities(), step0, chance_loss=CHANCE_16, current=current) is current


def test_harder_fx_gets_higher_probability():
    losses = {"eq": 1.8, "compressor": 1.0, "pan": 0.4, "imager": 0.6, "reverb": 1.2, "gain": 0.5}
    p = losses_to_probabilities(losses, chance_loss=CHANCE_16)
    order = sorted(losses, key=losses.get)
    assert [p[fx] for fx in order] == sorted(p.values()) and p["eq"] > p["pan"]
    # spread 1.4 / ln 15 = 0.52 ≥ 0.25: the whole range, min–max by hand
    assert p["eq"] == pytest.approx(1.0) and p["pan"] == pytest.approx(0.1)
    assert p["reverb"] == pytest.approx(0.1 + 0.9 * (1.2 - 0.4) / 1.4)


def test_small_real_difference_uses_part_of_the_range():
    # spread 0.1 of chance (above the 0.02 dead band, below the full 0.25): range 0.9 * 0.1 / 0.25 = 0.36
    losses = {"eq": 0.55 * CHANCE_16, "gain": 0.45 * CHANCE_16}
    p = losses_to_probabilities(losses, chance_loss=CHANCE_16)
    assert p["eq"] == pytest.approx(0.55 + 0.18) and p["gain"] == pytest.approx(0.55 - 0.18)


def test_noise_between_validations_moves_probabilities_little():
    losses = {"eq": 1.5, "compressor": 1.0, "pan": 0.4, "imager": 0.6, "reverb": 1.2, "gain": 0.5}
    jitter = {fx: v + (0.01 if i % 2 else -0.01) for i, (fx, v) in enumerate(losses.items())}
    a = losses_to_probabilities(losses, chance_loss=CHANCE_16)
    b = losses_to_probabilities(jitter, chance_loss=CHANCE_16)
    assert max(abs(a[fx] - b[fx]) for fx in a) < 0.03


def test_bad_input_is_one_line_error():
    with pytest.raises(MixfxError, match="non-finite"):
        losses_to_probabilities({"eq": float("nan"), "gain": 1.0}, chance_loss=CHANCE_16)
    with pytest.raises(MixfxError, match="chance_loss"):
        losses_to_probabilities({"eq": 1.0}, chance_loss=0.0)
    with pytest.raises(MixfxError, match="missing"):
        scheduled_probabilities(FXProbabilities(), {"eq": 1.0}, chance_loss=CHANCE_16)


def _write_metrics(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "kind", "name", "value"])
        w.writerows(rows)


def test_plot_writes_png(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [(0, "train", "loss", 2.7)]
    for step, (pe, pg) in enumerate([(0.9, 0.5), (0.9, 0.5), (0.8, 0.3)]):
        rows += [(step * 10, "valid", "p_eq", pe), (step * 10, "valid", "p_gain", pg), (step * 10, "valid", "loss_eq", 1.0)]
    _write_metrics(run / "metrics.csv", rows)
    assert read_schedule(run) == {"eq": [(0, 0.9), (10, 0.9), (20, 0.8)], "gain": [(0, 0.5), (10, 0.5), (20, 0.3)]}
    out = plot_schedule(run / "metrics.csv", tmp_path / "sched.png")
    assert out == tmp_path / "sched.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000


def test_plot_without_schedule_rows_is_one_line_error(tmp_path):
    _write_metrics(tmp_path / "metrics.csv", [(0, "train", "loss", 2.7)])
    with pytest.raises(MixevalError, match="--variant ps"):
        plot_schedule(tmp_path / "metrics.csv", tmp_path / "x.png")
    with pytest.raises(MixevalError, match="no such"):
        read_schedule(tmp_path / "nope.csv")
