"""The mixeval CLI (make-listening-test, analyze): bad input gives one line on stderr and exit 1."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from mixeval.cli import app

runner = CliRunner()


def _manifest(path: Path, pages=("q01", "q02"), conditions=("a", "b", "c")) -> Path:
    rows = []
    for p in pages:
        rows.append(dict(element_id=f"{p}-reference", page_id=p, question_type="multitrack", stem="mixture",
                         condition="reference_track", role="outside_reference"))
        for c in conditions:
            rows.append(dict(element_id=f"{p}-{c}x", page_id=p, question_type="multitrack", stem="mixture", condition=c, role="stimulus"))
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _long(path: Path, ratings: dict, participants=("p1", "p2", "p3", "p4")) -> Path:
    rows = [dict(participant=p, page=page, element=el, rating=r(i) if callable(r) else r)
            for i, p in enumerate(participants) for (page, el), r in ratings.items()]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _fails(args, match):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 1, res.output
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in res.output, err
    assert match in err, err
    return err


def test_analyze_bad_inputs_fail_with_one_line(tmp_path):
    man = _manifest(tmp_path / "manifest.csv")
    (tmp_path / "empty").mkdir()
    _fails(["analyze", tmp_path / "empty", "--manifest", man, "--out", tmp_path / "r"], "holds no results")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "save-1.xml").write_text('<waetresult key="k" state="update"/>')
    _fails(["analyze", stubs, "--manifest", man, "--out", tmp_path / "r"], "no complete WAET sessions")
    cols = tmp_path / "cols.csv"
    cols.write_text("participant,page,score\np1,q01,0.5\n")
    _fails(["analyze", cols, "--manifest", man], "missing column(s) ['element or condition']")
    big = _long(tmp_path / "big.csv", {("q01", "q01-ax"): 150.0, ("q01", "q01-bx"): 20.0})
    _fails(["analyze", big, "--manifest", man, "--out", tmp_path / "r"], "outside [0, 1] or [0, 100]")
    neg = _long(tmp_path / "neg.csv", {("q01", "q01-ax"): -0.2, ("q01", "q01-bx"): 0.5})
    _fails(["analyze", neg, "--manifest", man, "--out", tmp_path / "r"], "rating -0.2")
    frac = _long(tmp_path / "frac.csv", {("q01", "q01-ax"): 1.5, ("q01", "q01-bx"): 0.5})
    _fails(["analyze", frac, "--manifest", man, "--scale", "1", "--out", tmp_path / "r"], "outside [0, 1]")
    unknown = _long(tmp_path / "unknown.csv", {("q01", "q01-ax"): 0.5, ("q01", "q01-zz"): 0.5})
    _fails(["analyze", unknown, "--manifest", man, "--out", tmp_path / "r"], "not in the manifest")
    ok = _long(tmp_path / "ok.csv", {("q01", "q01-ax"): 0.5, ("q01", "q01-bx"): 0.4})
    _fails(["analyze", ok, "--manifest", tmp_path / "nope.csv"], "manifest not found")
    _fails(["analyze", ok], "pass --manifest")
    _fails(["analyze", ok, "--manifest", man, "--pair-by", "song"], "pair_by 'song'")
    bad_man = tmp_path / "bad_manifest.csv"
    bad_man.write_text("element_id,page_id,condition\nq01-ax,q01,a\n")
    _fails(["analyze", ok, "--manifest", bad_man], "lacks column(s) ['question_type', 'stem']")


def test_analyze_incomplete_participant_percent_scale_and_screening(tmp_path):
    man = _manifest(tmp_path / "manifest.csv")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        for page in ("q01", "q02"):
            if i == 7 and page == "q02":
                continue  # p7 has no ratings on q02
            a = 90 if i != 6 else 40  # p6 rates the screening condition badly
            rows += [dict(participant=f"p{i}", page=page, element=f"{page}-ax", rating=a + rng.integers(0, 5)),
                     dict(participant=f"p{i}", page=page, element=f"{page}-bx", rating=50 + rng.integers(-5, 5))]
            if not (i == 5 and page == "q01"):  # one incomplete pair: c missing for p5 on q01
                rows.append(dict(participant=f"p{i}", page=page, element=f"{page}-cx", rating=20 + rng.integers(-5, 5)))
    f = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    out = tmp_path / "rep"
    res = runner.invoke(app, ["analyze", str(f), "--manifest", str(man), "--out", str(out), "--screen-condition", "a",
                              "--exclude-flagged", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "p7 has no ratings for page(s) q02" in res.stderr
    assert "incomplete pair(s) dropped" in res.stderr
    assert "post-screening on 'a': 1 participant(s)" in res.stderr and "p6" in res.stderr
    desc = pd.read_csv(out / "descriptives.csv").set_index("condition")
    kept = pd.DataFrame(rows).query("participant != 'p6'")
    assert desc.loc["a", "mean"] == pytest.approx(kept[kept["element"].str.endswith("ax")]["rating"].mean() / 100)
    parts = pd.read_csv(out / "participants.csv").set_index("participant")
    assert bool(parts.loc["p6", "flagged"]) and not bool(parts.loc["p0", "flagged"])
    pw = pd.read_csv(out / "pairwise.csv").set_index(["a", "b"])
    assert pw.loc[("b", "c"), "n_dropped"] == 1
    assert not (out / "violin.png").exists()


def test_make_listening_test_cli(tmp_path):
    pre = tmp_path / "pre"
    rng = np.random.default_rng(1)
    for folder in ("input", "reference", "sysA", "sysB"):
        d = pre / folder / "song1"
        d.mkdir(parents=True)
        for k, stem in enumerate(("drums", "bass", "other", "vocals")):
            sf.write(d / f"{stem}.wav", (0.05 * (k + 1) * rng.standard_normal((44100, 2))).astype(np.float32), 44100)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "cli"\nprerendered = "pre"\nmultitrack_questions = 1\nstem_questions = 0\nsegment_seconds = 1.0\n'
        '[[conditions]]\nname = "sysA"\nlabel = "A"\n[[conditions]]\nname = "sysB"\n[[conditions]]\nname = "anchor"\nsource = "anchor"\n'
    )
    out = tmp_path / "test_out"
    res = runner.invoke(app, ["make-listening-test", str(spec), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 pages, 5 media files" in res.stdout
    assert (out / "tests" / "cli.xml").is_file() and (out / "README.md").is_file() and (out / "spec.json").is_file()
    man = pd.read_csv(out / "manifest.csv")
    assert man.loc[man["condition"] == "sysA", "condition_label"].tolist() == ["A"]
    assert "level:    -23.00 LUFS for every file" in res.stdout
    res = runner.invoke(app, ["make-listening-test", str(spec), "--out", str(tmp_path / "flac"), "--media-format", "flac"])
    assert res.exit_code == 0, res.output
    assert sorted(p.suffix for p in (tmp_path / "flac" / "media" / "cli").iterdir()) == [".flac"] * 5
    _fails(["make-listening-test", spec, "--out", tmp_path / "o6", "--media-format", "mp3"], "media_format: expected one of ['flac', 'wav']")
    _fails(["make-listening-test", spec, "--out", out], "already exists")
    _fails(["make-listening-test", spec, "--out", tmp_path / "o2", "--multitrack-questions", "2"], "need 2 songs")
    _fails(["make-listening-test"], "give a SPEC file")
    _fails(["make-listening-test", "--prerendered", pre, "--conditions", "sysA,nope", "--out", tmp_path / "o3"], "folder")
    _fails(["make-listening-test", spec, "--out", tmp_path / "o4", "--waet", tmp_path], "not a WAET checkout")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nprerendered = "pre"\nconditoins = []\n')
    _fails(["make-listening-test", bad], "unknown key(s) ['conditoins']")
    bad.write_text('name = "x"\nprerendered = "pre"\n[[conditions]]\nname = "m"\nsource = "checkpoint"\n[[conditions]]\nname = "sysA"\n')
    _fails(["make-listening-test", bad, "--out", tmp_path / "o5"], "ENCODER.pt,CLONER.pt")
    bad.write_text("name = ")
    _fails(["make-listening-test", bad], "invalid TOML")
    assert not any((tmp_path / o).exists() for o in ("o2", "o5", "o6"))  # failed runs leave nothing
