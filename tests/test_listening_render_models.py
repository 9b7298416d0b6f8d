"""The listening tests' checkpoint renderer (mixeval.listening.render_models) inside make-listening-test."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from mixeval.errors import MixevalError
from mixeval.listening.render_models import CheckpointRenderer
from mixeval.listening.spec import ConditionSpec
from mixeval.pipelines.listening import make_listening_test
from mixfx.io.checkpoint import save_model_checkpoint
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_listening_generate import SR, STEMS, _spec, _write_prerendered  # noqa: E402  (its synthetic stimuli)


def test_checkpoint_conditions_render_with_trained_models(tmp_path):
    """The CLI's renderer: each written psi file is Ψ(input stem, Φ(reference stem)) (summed over stems
    for a multitrack question), computed here with the models' own forward passes, at the file's gain."""
    torch.manual_seed(0)
    phi, psi = FXEncoder(FXEncoderConfig.tiny()).eval(), MixFXCloner(ClonerConfig.tiny(cond_dim=64)).eval()
    enc = save_model_checkpoint(tmp_path / "enc.pt", phi)
    cl = save_model_checkpoint(tmp_path / "cl.pt", psi)
    _write_prerendered(tmp_path / "pre", np.random.default_rng(0))
    spec = _spec(tmp_path / "pre")
    conds = (ConditionSpec("psi", source="checkpoint", checkpoint=f"{enc},{cl}"), ConditionSpec("input", source="input"))
    small = spec.replace(name="models", conditions=conds, multitrack_questions=1, stems=("drums",))
    res = make_listening_test(small, tmp_path / "out", renderer=CheckpointRenderer("cpu"))
    man = pd.read_csv(res.manifest_path)
    rows = man[man["condition"] == "psi"]
    assert sorted(rows["stem"]) == ["drums", "mixture"]
    length = int(round(small.segment_seconds * SR))
    fade = int(round(small.fade_ms * 1e-3 * SR))

    def segment(folder: str, song: str, stem: str, start_s: float) -> torch.Tensor:
        x, sr = sf.read(str(small.prerendered / folder / song / f"{stem}.wav"), dtype="float32", always_2d=True)
        start = int(round(start_s * sr))
        return torch.from_numpy(np.ascontiguousarray(x[start:start + length].T))

    for _, row in rows.iterrows():
        assert row["clipped_samples"] == 0
        written, sr = sf.read(str(res.out_dir / row["file"]), always_2d=True)
        n = written.shape[0]
        assert sr == SR and n == int(round(row["duration_s"] * SR))
        expected = np.zeros((2, n))
        with torch.no_grad():
            for stem in (STEMS if row["stem"] == "mixture" else (row["stem"],)):
                x = segment("input", row["song"], stem, row["segment_start_s"])
                r = segment("reference", row["song"], stem, row["segment_start_s"])
                expected += psi(x[None], phi(r[None]))[0, :, :n].double().numpy()
        expected *= 10.0 ** (row["gain_db"] / 20.0)
        inner = slice(fade, n - fade)  # the fades are the generator's, not the renderer's
        got = written.T[:, inner]
        assert np.abs(expected[:, inner]).max() > 0.05
        np.testing.assert_allclose(got, expected[:, inner], rtol=0, atol=2e-4)  # 16-bit PCM, gain rounded to 1e-4 dB
        # and not the input: the loudness-matched input file of the same page differs
        inp = man[(man["page_id"] == row["page_id"]) & (man["condition"] == "input")]["file"].item()
        unprocessed, _ = sf.read(str(res.out_dir / inp), always_2d=True)
        assert np.abs(unprocessed.T[:, inner] - got).max() > 0.05
    bad = spec.replace(name="bad", conditions=(ConditionSpec("psi", source="checkpoint", checkpoint=str(enc)),
                                               ConditionSpec("input", source="input")),
                       multitrack_questions=1, stems=("drums",))
    with pytest.raises(MixevalError, match="ENCODER.pt,CLONER.pt"):
        make_listening_test(bad, tmp_path / "bad", renderer=CheckpointRenderer("cpu"))
