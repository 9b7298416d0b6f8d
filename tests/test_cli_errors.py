"""Bad input (issue 11) in process: one stderr line, exit 1, nothing written; the checks behind it in the data and pipeline layers."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
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


def test_run_folder_is_not_created_for_a_bad_dataset_or_ir_folder(synth_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "irs").mkdir()
    run = tmp_path / "run"
    base = ["train-encoder", "--run", str(run), "--steps", "1", "--allow-unnormalized", "--device", "cpu"]
    res = runner.invoke(app, [*base[:1], str(empty), *base[1:]])
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1, res.output
    assert not run.exists()
    res = runner.invoke(app, [*base[:1], str(synth_root), *base[1:], "--ir-dir", str(tmp_path / "irs")])
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1, res.output
    assert not run.exists()


def test_output_that_is_a_file_or_a_folder_is_refused_before_work(synth_root, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_error(runner.invoke(app, ["synth-dataset", str(afile), "--songs", "2", "--seconds", "2"]), "not a folder")
    _one_line_error(runner.invoke(app, ["fx-features", str(synth_root), "-o", str(tmp_path)]), "existing folder")
    _one_line_error(runner.invoke(app, ["train-encoder", str(synth_root), "--run", str(afile)]), "not a folder")
    _one_line_error(runner.invoke(app, ["fx-normalize", str(synth_root), "-f", str(afile), "-o", str(synth_root / "norm")]),
                    "inside the input folder")


def test_resume_with_the_other_models_checkpoint_names_the_file_and_kind(tmp_path, synth_root):
    from mixfx.io.checkpoint import save_model_checkpoint
    from mixfx.models.encoder import FXEncoder, FXEncoderConfig

    run = tmp_path / "run"
    save_model_checkpoint(run / "checkpoints" / "last.pt", FXEncoder(FXEncoderConfig.tiny()))
    enc = save_model_checkpoint(tmp_path / "enc.pt", FXEncoder(FXEncoderConfig.tiny()))
    res = runner.invoke(app, ["train-cloner", str(synth_root), "-e", str(enc), "--run", str(run), "--resume", "--device", "cpu"])
    _one_line_error(res, "last.pt: a fxencoder checkpoint")


def test_fresh_start_drops_a_dead_starts_metrics_and_temporaries(synth_root, tmp_path):
    from mixfx.pipelines.train_cloner import train_cloner
    from mixfx.io.checkpoint import save_model_checkpoint
    from mixfx.models.encoder import FXEncoder, FXEncoderConfig

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.csv").write_text("step,kind,name,value\n7,train,loss,1.0\n")
    (run / "checkpoints" / ".step_0000002.abc.tmp.pt").write_bytes(b"half")
    enc = save_model_checkpoint(tmp_path / "enc.pt", FXEncoder(FXEncoderConfig.tiny()))
    train_cloner(synth_root, enc, run, ClonerTrainConfig.tiny(steps=1, val_every=1, checkpoint_every=1, batch=1), device="cpu")
    steps = [line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert "7" not in steps and steps
    assert not list((run / "checkpoints").glob(".*.tmp*"))


def test_a_truncated_wav_is_refused_and_a_complete_one_loads(tmp_path):
    from mixfx.io.audio import load_audio

    x = np.full((44100, 2), 0.1, dtype=np.float32)
    for subtype in ("FLOAT", "PCM_16", "PCM_24"):
        sf.write(tmp_path / "full.wav", x, 44100, subtype=subtype)
        assert load_audio(tmp_path / "full.wav").shape == (2, 44100)
        data = (tmp_path / "full.wav").read_bytes()
        (tmp_path / "cut.wav").write_bytes(data[:len(data) - len(data) // 2])
        with pytest.raises(MixfxError, match="truncated WAV"):
            load_audio(tmp_path / "cut.wav")


def test_auto_scale_refuses_mixed_rating_scales():
    import pandas as pd

    from mixeval.errors import MixevalError
    from mixeval.listening.analyze import normalize_scale

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"participant": "p1", "page": [f"q{i}" for i in range(20)], "condition": "a",
                       "rating": rng.uniform(0.05, 0.95, 20)})
    out, top = normalize_scale(df)
    assert top == 1.0 and np.allclose(out["rating"], df["rating"])
    df.loc[7, "rating"] = 7.5
    with pytest.raises(MixevalError, match=r"rating 7.5 \(participant p1, page q7\).*mixed rating scales"):
        normalize_scale(df)
    hundred = df.assign(rating=rng.uniform(5, 95, 20))  # a real 0–100 test still works
    assert normalize_scale(hundred)[1] == 100.0


def test_reproduce_refuses_bad_sizes_before_creating_its_folder(tmp_path):
    from mixeval.cli import app as mixeval_app

    for args in (["--songs", "-1"], ["--seconds", "0"], ["--preset", "bogus"], ["--data", str(tmp_path / "nope")]):
        res = runner.invoke(mixeval_app, ["reproduce", str(tmp_path / "out"), *args])
        _one_line_error(res, "")
        assert not (tmp_path / "out").exists(), args


def test_digital_silence_is_every_sample_zero(tmp_path):
    from mixfx.io.audio import is_digital_silence

    x = np.zeros((100_000, 2), dtype=np.float32)  # longer than one 65536-frame block
    sf.write(tmp_path / "zeros.wav", x, 44100, subtype="FLOAT")
    x[-1, 1] = 1e-6  # one quiet sample in the last frame, second block
    sf.write(tmp_path / "last.wav", x, 44100, subtype="FLOAT")
    for name, silent in (("zeros.wav", True), ("last.wav", False)):
        assert (not np.any(sf.read(tmp_path / name)[0])) == silent  # the reference: every sample read at once
        assert is_digital_silence(tmp_path / name, block_frames=1 << 16) == silent


def test_a_stem_silent_in_every_song_of_a_split_is_refused_when_the_data_is_built(tmp_path, caplog):
    from test_bad_inputs import write_dataset, write_noise

    from mixfx.data.musdb import MultitrackSegments

    root = write_dataset(tmp_path / "d", silent=("s2", "vocals"))  # s2 is the only validation song
    with pytest.raises(MixfxError, match=r"s2/vocals.wav: silent vocals stem .* split 'valid'"):
        MultitrackSegments(root, "valid")
    assert len(MultitrackSegments(root, "valid", silence_threshold_db=None).songs) == 1  # used as it is
    write_noise(root / "train" / "s3" / "vocals.wav", 2.0, silent=True)  # a second train song with silent vocals ...
    for stem in ("drums", "bass", "other", "mixture"):
        write_noise(root / "train" / "s3" / f"{stem}.wav", 2.0, seed=7)
    with caplog.at_level("WARNING", logger="mixfx.data.musdb"):
        data = MultitrackSegments(root, "train")  # ... next to s1, whose vocals sound: only a warning
    assert "s3/vocals.wav" in caplog.text and "1 of 2 song(s)" in caplog.text
    g = torch.Generator().manual_seed(0)
    songs = {data.sample("vocals", 22050, generator=g)[1] for _ in range(20)}
    assert [data.songs[s].name for s in songs] == ["s1"]


def test_pipeline_functions_check_their_output_before_reading_inputs(tmp_path):
    """The Python API refuses a bad output path first: the inputs below do not even exist."""
    from mixeval.listening.spec import ConditionSpec, ListeningTestSpec
    from mixeval.pipelines.listening import analyze_listening, make_listening_test
    from mixfx.data.synth import make_synth_dataset
    from mixfx.pipelines.manipulate import manipulate_files

    afile = tmp_path / "afile"
    afile.write_text("x")
    missing = tmp_path / "missing"
    with pytest.raises(MixfxError, match="afile/set: output folder lies under .*afile, which is a file"):
        make_synth_dataset(afile / "set", songs=3, seconds=2, seed=0)
    with pytest.raises(MixfxError, match="afile: output folder exists and is not a folder"):
        manipulate_files([missing / "x.wav"], afile, seed=0)
    with pytest.raises(MixfxError, match="afile: --out exists and is not a folder"):
        analyze_listening(missing / "results.csv", out_dir=afile)
    spec = ListeningTestSpec(conditions=(ConditionSpec("a"), ConditionSpec("anchor", source="anchor")), prerendered=missing)
    with pytest.raises(MixfxError, match="afile: --out exists and is not a folder"):
        make_listening_test(spec, afile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_analyze_publishes_every_file_or_none(tmp_path, monkeypatch):
    import mixeval.pipelines.listening as listening
    from test_bad_inputs import write_listening_manifest, write_ratings

    ratings = write_ratings(tmp_path / "r.csv", lambda p, q, j: 0.2 + 0.3 * j)
    man = write_listening_manifest(tmp_path / "m.csv")

    def failing_plot(*args, **kwargs):
        raise RuntimeError("the plot failed after the tables were written")

    monkeypatch.setattr(listening, "violin_figure", failing_plot)
    with pytest.raises(RuntimeError, match="plot failed"):
        listening.analyze_listening(ratings, manifest=man, out_dir=tmp_path / "rep")
    assert not (tmp_path / "rep").exists()
    monkeypatch.undo()
    res = listening.analyze_listening(ratings, manifest=man, out_dir=tmp_path / "rep")
    assert {p.name for p in res.files} == {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"ratings.csv", "pairwise.csv", "summary.md", "violin.png"} <= {p.name for p in res.files}
