"""Every bad-input class of issue 11 through the real console entry points (one line, exit 1, nothing written).

The whole table runs in one subprocess (``tests/cli_batch.py``: each case calls ``mixfx.cli:main`` or
``mixeval.cli:main``, the ``[project.scripts]`` entry points, with its own argv and captured file
descriptors), since every fresh interpreter pays the torch import. Two cases also run alone through
``python -m mixfx.cli`` / ``python -m mixeval.cli`` (marked ``slow``). Each bad case must give exit status 1, exactly one
non-blank stderr line naming the path or option, no traceback, and leave the sandbox's file tree as it
was. The same subprocess, under umask 022, runs a few good commands whose every output must then be
readable by group and others (files 0644, folders 0755).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import REPO, modes_under

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")
AS_ROOT = os.geteuid() == 0  # root ignores permission bits: "unwritable" is then a path under a file


def write_noise(path: Path, seconds: float = 1.0, *, seed: int = 0, silent: bool = False) -> Path:
    """Stereo 16-bit white noise at -20 dBFS RMS (or zeros) of ``seconds`` at 44.1 kHz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.zeros((int(seconds * SR), 2)) if silent else 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * SR), 2))
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return path


def write_dataset(root: Path, *, silent: tuple[str, str] | None = None, train: bool = True) -> Path:
    """MUSDB18-HQ layout: train/s1, train/s2 (validation.txt lists s2), test/t1; ``silent`` = (song, stem) of zeros."""
    songs = (["train/s1", "train/s2"] if train else []) + ["test/t1"]
    for i, song in enumerate(songs):
        for k, stem in enumerate((*STEMS, "mixture")):
            write_noise(root / song / f"{stem}.wav", 2.0, seed=10 * i + k, silent=(song.split("/")[1], stem) == silent)
    (root / "validation.txt").write_text("s2\n")
    return root


def write_ratings(path: Path, rating) -> Path:
    """Long-format ratings of 4 participants x 2 pages x 3 conditions (``rating(participant, page, condition)``)."""
    rows = [dict(participant=f"p{p}", page=f"q{q}", element=f"q{q}-{c}x", rating=rating(p, q, j))
            for p in range(4) for q in range(2) for j, c in enumerate("abc")]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_listening_manifest(path: Path) -> Path:
    rows = [dict(element_id=f"q{q}-{c}x", page_id=f"q{q}", question_type="multitrack", stem="mixture", condition=c, role="stimulus")
            for q in range(2) for c in "abc"]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _prerendered(root: Path) -> Path:
    for s in range(2):
        for f, folder in enumerate(("input", "reference", "sysA")):
            for k, stem in enumerate(STEMS):
                write_noise(root / folder / f"song{s}" / f"{stem}.wav", 1.5, seed=100 * s + 10 * f + k)
    return root


def _sandbox(root: Path) -> dict[str, Path]:
    """Every input the cases need, built in-process (cheap): small noise files, tiny checkpoints."""
    from mixfx.io.checkpoint import save_model_checkpoint
    from mixfx.models.encoder import FXEncoder, FXEncoderConfig

    p = {"root": root}
    p["data"] = write_dataset(root / "data")
    p["silent"] = write_dataset(root / "silent", silent=("s2", "vocals"))
    p["notrain"] = write_dataset(root / "notrain", train=False)
    p["nobass"] = write_dataset(root / "nobass")
    (p["nobass"] / "train" / "s1" / "bass.wav").unlink()
    for name in ("empty", "irs", "folder"):
        p[name] = root / name
        p[name].mkdir()
    p["file"] = root / "afile.txt"
    p["file"].write_text("not a folder\n")
    if AS_ROOT:
        p["unwritable"] = p["file"]
    else:
        p["unwritable"] = root / "readonly"
        p["unwritable"].mkdir()
        p["unwritable"].chmod(0o555)
    p["x"] = write_noise(root / "x.wav")
    p["ax"], p["bx"] = write_noise(root / "a" / "x.wav", seed=1), write_noise(root / "b" / "x.wav", seed=2)
    full = write_noise(root / "full.wav").read_bytes()
    p["cut"] = root / "cut.wav"
    p["cut"].write_bytes(full[:full.index(b"data") + 8 + 16])  # the header and 4 stereo 16-bit frames of a 1 s file
    p["enc"] = save_model_checkpoint(root / "enc.pt", FXEncoder(FXEncoderConfig.tiny()))
    p["wrongkind"] = root / "wrongkind"
    (p["wrongkind"] / "checkpoints").mkdir(parents=True)
    shutil.copy(p["enc"], p["wrongkind"] / "checkpoints" / "last.pt")  # an FXencoder where a cloner run is resumed
    p["ok"] = write_ratings(root / "ok.csv", lambda pp, q, j: round(0.2 + 0.3 * j + 0.01 * pp + 0.02 * q, 3))
    p["mixed"] = write_ratings(root / "mixed.csv", lambda pp, q, j: 7.5 if (pp, q, j) == (1, 1, 2) else round(0.2 + 0.3 * j, 3))
    p["manifest"] = write_listening_manifest(root / "manifest.csv")
    p["pre"] = _prerendered(root / "pre")
    return p


def _cases(p: dict[str, Path]) -> list[tuple[str, str, list[str], str]]:
    """``(id, prog, argv, text the one stderr line must contain)`` of every bad input."""
    u, f = p["unwritable"], str(p["file"])
    data, enc = str(p["data"]), str(p["enc"])
    run = str(p["root"] / "run")
    enc_run = ["train-encoder", "--run", run, "--allow-unnormalized", "--device", "cpu", "--steps", "1"]
    cloner = ["train-cloner", data, "-e", enc, "--run", run, "--device", "cpu"]
    listening = ["make-listening-test", "--prerendered", str(p["pre"]), "--conditions", "sysA,anchor",
                 "--multitrack-questions", "1", "--stem-questions", "0", "--segment-seconds", "1"]
    evaluation = ["--data", data, "-e", enc, "--quick", "--split", "train+valid", "--device", "cpu"]
    transfer = ["transfer", "-i", str(p["data"] / "test" / "t1"), "-r", str(p["data"] / "train" / "s1"), "-e", enc, "-c", enc]
    return [
        # output paths: unwritable (read-only folder, or under a file as root), the wrong kind, inside an input
        ("synth_unwritable", "mixfx", ["synth-dataset", str(u / "synth"), "-n", "3", "-s", "2"], str(u / "synth")),
        ("synth_out_is_file", "mixfx", ["synth-dataset", f, "-n", "3", "-s", "2"], f"{f}: output folder exists and is not a folder"),
        ("features_unwritable", "mixfx", ["fx-features", data, "-o", str(u / "f.npz")], str(u / "f.npz")),
        ("features_out_is_folder", "mixfx", ["fx-features", data, "-o", str(p["folder"])], "--out is an existing folder"),
        ("normalize_unwritable", "mixfx", ["fx-normalize", data, "-f", f, "-o", str(u / "norm")], str(u / "norm")),
        ("normalize_inside_input", "mixfx", ["fx-normalize", data, "-f", f, "-o", str(p["data"] / "norm")], "inside the input folder"),
        ("manipulate_unwritable", "mixfx", ["manipulate", str(p["x"]), "-o", str(u / "m")], str(u / "m")),
        ("manipulate_out_is_file", "mixfx", ["manipulate", str(p["x"]), "-o", f], f"{f}: output folder exists and is not a folder"),
        ("encoder_run_is_file", "mixfx", [enc_run[0], data, "--run", f, *enc_run[3:]], f"{f}: --run exists and is not a folder"),
        ("encoder_run_unwritable", "mixfx", [enc_run[0], data, "--run", str(u / "run"), *enc_run[3:]], str(u / "run")),
        ("transfer_out_is_file", "mixfx", [*transfer, "-o", f], f"{f}: out exists and is not a folder"),
        ("transfer_unwritable", "mixfx", [*transfer, "-o", str(u / "tr")], str(u / "tr")),
        ("analyze_out_is_file", "mixeval", ["analyze", str(p["ok"]), "--manifest", str(p["manifest"]), "-o", f], f"{f}: --out exists and is not a folder"),
        ("analyze_unwritable", "mixeval", ["analyze", str(p["ok"]), "--manifest", str(p["manifest"]), "-o", str(u / "rep")], str(u / "rep")),
        ("listening_out_is_file", "mixeval", [*listening, "-o", f], f"{f}: --out exists and is not a folder"),
        ("listening_unwritable", "mixeval", [*listening, "-o", str(u / "lt")], str(u / "lt")),
        ("disentangle_out_is_file", "mixeval", ["disentangle", *evaluation, "--out", f], f"{f}: --out exists and is not a folder"),
        ("retrieval_out_is_file", "mixeval", ["retrieval", *evaluation, "--out", f], f"{f}: --out exists and is not a folder"),
        ("table2_out_is_file", "mixeval", ["table2", "--data", data, "-m", f"a={enc},{enc}", "--quick", "--device", "cpu", "--out", f],
         f"{f}: --out exists and is not a folder"),
        ("listening_inside_input", "mixeval", [*listening, "-o", str(p["pre"] / "lt")], "inside the input folder"),
        # options
        ("encoder_preset", "mixfx", ["train-encoder", data, "--run", run, "--preset", "bogus"], "--preset: unknown preset 'bogus'"),
        ("cloner_preset", "mixfx", [*cloner, "--preset", "bogus"], "--preset: unknown preset 'bogus'"),
        ("cloner_batch_0", "mixfx", [*cloner, "--batch", "0"], "batch"),
        ("cloner_steps_negative", "mixfx", [*cloner, "--steps", "-1"], "steps"),
        ("manipulate_variants_0", "mixfx", ["manipulate", str(p["x"]), "-o", str(p["root"] / "m"), "--variants", "0"], "--variants"),
        ("manipulate_variants_negative", "mixfx", ["manipulate", str(p["x"]), "-o", str(p["root"] / "m"), "-k", "-2"], "--variants"),
        ("reproduce_songs_negative", "mixeval", ["reproduce", str(p["root"] / "rp"), "--songs", "-1"], "songs"),
        # datasets and inputs: refused before a run folder (or any output) exists
        ("encoder_empty_dataset", "mixfx", [enc_run[0], str(p["empty"]), *enc_run[1:]], str(p["empty"])),
        ("encoder_no_train_folder", "mixfx", [enc_run[0], str(p["notrain"]), *enc_run[1:]], "no train/ folder"),
        ("encoder_missing_stem", "mixfx", [enc_run[0], str(p["nobass"]), *enc_run[1:]], f"{p['nobass'] / 'train' / 's1'}: missing bass.wav"),
        ("encoder_bad_ir_dir", "mixfx", [enc_run[0], data, *enc_run[1:], "--ir-dir", str(p["irs"])], str(p["irs"])),
        ("encoder_silent_stem", "mixfx", [enc_run[0], str(p["silent"]), *enc_run[1:]],
         f"{p['silent'] / 'train' / 's2' / 'vocals.wav'}: silent vocals stem"),
        ("encoder_resume_without_checkpoint", "mixfx", [enc_run[0], data, *enc_run[1:], "--resume"], f"{run}: nothing to resume"),
        ("cloner_resume_other_models_checkpoint", "mixfx", [*cloner[:4], "--run", str(p["wrongkind"]), "--device", "cpu", "--resume"],
         "last.pt: a fxencoder checkpoint"),
        ("manipulate_same_names", "mixfx", ["manipulate", str(p["ax"]), str(p["bx"]), "-o", str(p["root"] / "m")], "share the name 'x'"),
        ("manipulate_truncated_wav", "mixfx", ["manipulate", str(p["cut"]), "-o", str(p["root"] / "m")], f"{p['cut']}: truncated WAV"),
        ("transfer_missing_separator_weights", "mixfx",
         ["transfer", "-i", str(p["x"]), "-r", str(p["x"]), "-o", str(p["root"] / "tr"), "-e", enc, "-c", str(p["root"] / "nope.pt")],
         f"{p['x']}: is a mixture: pass --separator-weights"),
        ("transfer_separator_weights_not_found", "mixfx",
         ["transfer", "-i", str(p["x"]), "-r", str(p["x"]), "-o", str(p["root"] / "tr"), "-e", enc, "-c", enc,
          "--separator-weights", str(p["root"] / "nope.pt")], f"{p['root'] / 'nope.pt'}: separator weights not found"),
        ("analyze_mixed_scales", "mixeval", ["analyze", str(p["mixed"]), "--manifest", str(p["manifest"]), "-o", str(p["root"] / "rep")],
         "rating 7.5 (participant p1, page q1)"),
    ]


def _good(p: dict[str, Path]) -> list[tuple[str, str, list[str]]]:
    """Commands that must succeed; their outputs are checked for umask-022 modes."""
    root = p["root"]
    return [
        ("synth-dataset", "mixfx", ["synth-dataset", str(root / "out_synth"), "-n", "1", "-s", "2"]),
        ("manipulate", "mixfx", ["manipulate", str(p["x"]), "-o", str(root / "out_manip"), "--variants", "2", "--single-fx", "gain"]),
        ("analyze", "mixeval", ["analyze", str(p["ok"]), "--manifest", str(p["manifest"]), "-o", str(root / "out_report")]),
        ("make-listening-test", "mixeval", ["make-listening-test", "--prerendered", str(p["pre"]), "--conditions", "sysA,anchor",
                                            "--multitrack-questions", "1", "--stem-questions", "0", "--segment-seconds", "1",
                                            "-o", str(root / "out_listening")]),
    ]


_NAMES_ONLY = defaultdict(lambda: Path("/unused"))  # stands in for the sandbox when only the case ids are needed


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Build the sandbox, run every case in one subprocess (umask 022), return ``(paths, results)``."""
    work = tmp_path_factory.mktemp("bad_inputs")
    p = _sandbox(work / "sandbox")
    cases = [dict(id=i, prog=prog, argv=argv) for i, prog, argv, _ in _cases(p)]
    cases += [dict(id=f"good:{i}", prog=prog, argv=argv) for i, prog, argv in _good(p)]
    (work / "cases.json").write_text(json.dumps({"root": str(p["root"]), "umask": 0o022, "cases": cases}))
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "cli_batch.py"), str(work / "cases.json"), str(work / "results.json")],
                          cwd=p["root"], env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((work / "results.json").read_text())
    yield p, out
    if not AS_ROOT:
        p["unwritable"].chmod(0o755)


def _assert_one_line_error(rc, stderr: str, new: list[str], needle: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 1 and "Traceback" not in stderr, f"exit {rc}:\n{stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stderr
    assert new == [], f"left behind: {new}"


def test_the_batch_ran_the_code_under_test(batch):
    _, out = batch
    for prog, module in out["modules"].items():
        assert Path(module).resolve() == REPO / prog / "cli.py"


# bad inputs that still print more than their error, in code this test's owner does not change
KNOWN_GAPS: dict[str, str] = {}  # every class is handled; add a case here only with its reason


@pytest.mark.parametrize("case", [pytest.param(c[0], marks=pytest.mark.xfail(reason=KNOWN_GAPS[c[0]], strict=True))
                                  if c[0] in KNOWN_GAPS else c[0] for c in _cases(_NAMES_ONLY)])
def test_bad_input_is_one_line_exit_1_and_writes_nothing(batch, case):
    p, out = batch
    needle = {c[0]: c[3] for c in _cases(p)}[case]
    res = out["results"][case]
    _assert_one_line_error(res["rc"], res["stderr"], res["new"], needle)
    assert res["gone"] == []


@pytest.mark.slow  # two more interpreters (about 5 s of CPU each)
@pytest.mark.parametrize("prog, case", [("mixfx", "encoder_silent_stem"), ("mixeval", "analyze_mixed_scales")])
def test_python_dash_m_entry_points(batch, prog, case):
    """The same cases through ``python -m <prog>.cli`` in their own interpreters."""
    p, _ = batch
    [(_, _, argv, needle)] = [c for c in _cases(p) if c[0] == case]
    from cli_batch import tree

    before = tree(p["root"])
    proc = subprocess.run([sys.executable, "-m", f"{prog}.cli", *argv], cwd=p["root"], env=_env(),
                          capture_output=True, text=True, timeout=300)
    _assert_one_line_error(proc.returncode, proc.stderr, sorted(tree(p["root"]) - before), needle)


@pytest.mark.parametrize("name", [g[0] for g in _good(_NAMES_ONLY)])
def test_outputs_are_readable_by_group_and_others_under_umask_022(batch, name):
    p, out = batch
    res = out["results"][f"good:{name}"]
    assert res["rc"] == 0, res["stderr"]
    folder = p["root"] / {"synth-dataset": "out_synth", "manipulate": "out_manip", "analyze": "out_report",
                          "make-listening-test": "out_listening"}[name]
    modes = modes_under(folder)
    assert len(modes) >= 4, modes
    wrong = {q: oct(m) for q, m in modes.items() if m != (0o755 if (folder / q).is_dir() else 0o644)}
    assert wrong == {}
