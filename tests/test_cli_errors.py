"""Bad input to the ``mixfx`` commands: one stderr line, exit 1, nothing written (issue 11, first classes)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from mixfx.cli import app
from mixfx.errors import MixfxError
from mixfx.train.config import ClonerTrainConfig

runner = CliRunner()


def _one_line_error(res, needle: str) -> None:
    assert res.exit_code == 1, res.output
    err = res.stderr.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_unknown_preset_is_one_line(tmp_path):
    for cmd in (["train-encoder", str(tmp_path), "-r", str(tmp_path / "run")],
                ["train-cloner", str(tmp_path), "-e", str(tmp_path / "e.pt"), "-r", str(tmp_path / "run")]):
        _one_line_error(runner.invoke(app, [*cmd, "--preset", "bogus"]), "--preset")
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("changes", [dict(batch=0), dict(steps=-1), dict(steps=0), dict(seconds=0.0)])
def test_cloner_config_refuses_impossible_sizes(changes):
    with pytest.raises(MixfxError):
        ClonerTrainConfig.tiny(**changes)


def test_manipulate_refuses_zero_variants_and_clashing_names(tmp_path):
    x = (0.1 * np.random.default_rng(0).standard_normal((44100, 2))).astype(np.float32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sf.write(tmp_path / "a" / "x.wav", x, 44100)
    sf.write(tmp_path / "b" / "x.wav", x, 44100)
    out = tmp_path / "out"
    for variants in ("0", "-2"):
        _one_line_error(runner.invoke(app, ["manipulate", str(tmp_path / "a" / "x.wav"), "-o", str(out), "--variants", variants]),
                        "--variants")
        assert not out.exists()
    _one_line_error(runner.invoke(app, ["manipulate", str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav"), "-o", str(out)]),
                    "share the name")
    assert not out.exists()
