"""make-listening-test on synthetic stimuli, then the round trip through synthetic WAET results and analyze."""

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mixeval.errors import MixevalError
from mixeval.listening.analyze import AnalysisOptions
from mixeval.listening.generate import StimulusSource, plan_questions
from mixeval.listening.spec import ConditionSpec, ListeningTestSpec
from mixeval.listening.waet import check_test_xml, validate_xsd
from mixeval.listening.xmlsafe import parse_xml_file
from mixeval.pipelines.listening import analyze_listening, make_listening_test

sys.path.insert(0, str(Path(__file__).resolve().parent))
from waet_synth import write_waet_result  # noqa: E402

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")
CONDITIONS = ("sysA", "sysB", "gt")


def _write_prerendered(root: Path, rng: np.random.Generator) -> None:
    """3 songs x (input, reference, sysA, sysB, gt) x 4 stems of 2.5 s: noise bands and tones at very different levels."""
    t = np.arange(int(2.5 * SR)) / SR
    for s in range(3):
        for fi, folder in enumerate(("input", "reference") + CONDITIONS):
            d = root / folder / f"song{s}"
            d.mkdir(parents=True)
            for k, stem in enumerate(STEMS):
                level = 10 ** (-(6 + 4 * fi + 3 * k) / 20)
                tone = np.sin(2 * np.pi * (80 * (k + 1) * (s + 1)) * t)
                noise = np.cumsum(rng.standard_normal((2, t.size)), axis=1) * 0.01 if k % 2 else rng.standard_normal((2, t.size))
                x = level * (0.5 * tone + 0.5 * noise / np.abs(noise).max())
                if folder == "input" and s == 0 and stem == "bass":
                    x[:] = 0.0  # song0 has a silent input bass: never usable for a bass question
                sf.write(d / f"{stem}.wav", x.T.astype(np.float32), SR, subtype="FLOAT")


def _spec(root: Path, **kw) -> ListeningTestSpec:
    conds = [ConditionSpec(c, label=f"Sys {c}" if c != "gt" else "gt") for c in CONDITIONS]
    conds += [ConditionSpec("anchor", source="anchor"), ConditionSpec("input", source="input")]
    base = dict(name="synth", conditions=tuple(conds), prerendered=root, multitrack_questions=2, stem_questions=1,
                stems=("drums", "bass"), segment_seconds=1.5, segment_start_seconds=0.5, segment_starts={"song2": 0.8}, seed=7)
    base.update(kw)
    return ListeningTestSpec(**base).validate()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("listening")
    _write_prerendered(root / "pre", np.random.default_rng(0))
    spec = _spec(root / "pre")
    before = os.umask(0o022)  # the usual umask: a web server running as another user must read the test
    try:
        result = make_listening_test(spec, root / "out")
    finally:
        os.umask(before)
    return spec, result


def test_generated_files_are_readable_by_others_under_umask_022(generated):
    from conftest import modes_under

    _, res = generated
    modes = modes_under(res.out_dir)
    assert len(modes) > 4 * 7
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o755 if (res.out_dir / p).is_dir() else 0o644)}
    assert wrong == {}


def test_generated_xml_passes_structural_check_and_has_waet_structure(generated):
    spec, res = generated
    assert res.xml_path == res.out_dir / "tests" / "synth.xml"
    assert check_test_xml(res.xml_path, root_dir=res.out_dir) == []
    root = parse_xml_file(res.xml_path)
    setup = root.find("setup")
    assert setup.get("interface") == "MUSHRA" and setup.get("sampleRate") is None
    assert [c.tag for c in root][0] == "setup"
    assert setup.find("survey[@location='before']/surveystatement") is not None  # instructions before page 1
    pages = root.findall("page")
    assert len(pages) == res.n_pages == 4
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    for page in pages:
        assert page.get("hostURL") == "media/synth/"
        assert (page.get("randomiseOrder"), page.get("loop"), page.get("synchronous")) == ("true", "true", "true")
        assert [c.tag for c in page] == ["title", "commentboxprefix", "interface"] + ["audioelement"] * 7 + ["commentquestions"]
        els = page.findall("audioelement")
        assert [(e.get("type"), e.get("label")) for e in els[:2]] == [("outside-reference", "Reference mix"), ("outside-reference", "Input track")]
        assert all(e.get("type") == "normal" and e.get("label") is None for e in els[2:])
        assert page.find("interface/scales/scalelabel") is not None


def test_media_exist_are_16bit_blinded_and_loudness_matched(generated):
    pyln = pytest.importorskip("pyloudnorm")
    spec, res = generated
    man = pd.read_csv(res.manifest_path)
    assert len(man) == res.n_files == 4 * 7
    assert (man.groupby("page_id")["condition"].apply(sorted).apply(tuple) == tuple(sorted(
        ["reference_track", "input_track", "sysA", "sysB", "gt", "anchor", "input"]))).all()
    meter = pyln.Meter(SR)
    levels = []
    for page, rows in man.groupby("page_id"):
        lengths, loud = set(), []
        for _, row in rows.iterrows():
            path = res.out_dir / row["file"]
            info = sf.info(str(path))
            assert info.subtype == "PCM_16" and info.samplerate == SR and info.channels == 2
            lengths.add(info.frames)
            x, _ = sf.read(str(path))
            loud.append(meter.integrated_loudness(x))
            assert not any(c in path.name for c in ("sysA", "sysB", "gt", "anchor", "input", "reference"))
            if row["role"] != "outside_reference":
                assert row["condition"] not in row["element_id"]
        assert len(lengths) == 1 and lengths.pop() == int(1.5 * SR)  # one question = one segment length
        levels += loud
    # one level for the whole test (not per page), here the target: nothing reaches the ceiling
    assert res.level_lufs == spec.target_lufs and res.peak_limited == []
    assert max(abs(v - res.level_lufs) for v in levels) < 0.1, levels
    assert (man["loudness_lufs"] == spec.target_lufs).all() and (man["peak_excess_db"] == 0).all()
    assert (man["clipped_samples"] == 0).all() and (man["true_peak_dbtp"] <= -1.0 + 1e-6).all()
    assert f"{spec.target_lufs:.2f} LUFS" in (res.out_dir / "README.md").read_text(encoding="utf-8")


def test_one_test_wide_level_is_lowered_when_a_file_would_exceed_the_ceiling_and_flac(tmp_path):
    """A condition of sparse clicks cannot reach -23 LUFS under -1 dBTP: the whole test goes down, in FLAC."""
    pyln = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(1)
    _write_prerendered(tmp_path / "pre", rng)
    for s in range(3):
        d = tmp_path / "pre" / "clicks" / f"song{s}"
        d.mkdir(parents=True)
        for stem in STEMS:
            x = 0.002 * rng.standard_normal((int(2.5 * SR), 2))
            x[::11025] = 0.5
            sf.write(d / f"{stem}.wav", x.astype(np.float32), SR, subtype="FLOAT")
    spec = _spec(tmp_path / "pre", conditions=(ConditionSpec("sysA"), ConditionSpec("clicks")), multitrack_questions=1,
                 stem_questions=1, stems=("drums",), media_format="flac")
    res = make_listening_test(spec, tmp_path / "out")
    man = pd.read_csv(res.manifest_path)
    assert res.level_lufs < spec.target_lufs - 3
    limited = man[man["peak_excess_db"] > 0]
    assert set(limited["condition"]) == {"clicks"} and len(res.peak_limited) == len(limited) == 2
    assert max(man["peak_excess_db"]) == pytest.approx(spec.target_lufs - res.level_lufs, abs=1e-3)
    assert all(f.split("/")[-1] in " ".join(res.peak_limited) for f in limited["file"])
    readme = (res.out_dir / "README.md").read_text(encoding="utf-8")
    assert "Level lowered" in readme and f"{res.level_lufs:.2f} LUFS" in readme and "decodeAudioData" in readme
    meter = pyln.Meter(SR)
    levels, peaks = [], []
    for f in man["file"]:
        assert f.endswith(".flac") and sf.info(str(res.out_dir / f)).format == "FLAC"
        x, _ = sf.read(str(res.out_dir / f))
        levels.append(meter.integrated_loudness(x))
    assert max(abs(v - res.level_lufs) for v in levels) < 0.1, levels
    assert man["true_peak_dbtp"].max() == pytest.approx(-1.0, abs=1e-3)
    assert check_test_xml(res.xml_path, root_dir=res.out_dir) == []
    assert all(e.get("url").endswith(".flac") for e in parse_xml_file(res.xml_path).iter("audioelement"))


def test_manifest_labels_of_outside_references_are_what_participants_see(generated):
    _, res = generated
    man = pd.read_csv(res.manifest_path, keep_default_na=False).set_index("element_id")
    shown = {e.get("id"): e.get("label") for e in parse_xml_file(res.xml_path).iter("audioelement") if e.get("label")}
    assert len(shown) == 2 * res.n_pages
    outside = man[man["role"] == "outside_reference"]
    assert set(outside.index) == set(shown)
    for eid, label in shown.items():
        assert outside.loc[eid, "label"] == outside.loc[eid, "condition_label"] == label


def test_question_plan_skips_silent_stems_and_is_seeded(generated):
    spec, res = generated
    man = pd.read_csv(res.manifest_path)
    kinds = man.drop_duplicates("page_id")[["question_type", "stem", "song"]]
    assert sorted(kinds["stem"]) == ["bass", "drums", "mixture", "mixture"]
    assert kinds[kinds["question_type"] == "multitrack"]["song"].nunique() == 2
    assert kinds[kinds["stem"] == "bass"]["song"].tolist() != ["song0"]  # song0's input bass is silent
    source = StimulusSource(spec)
    a = plan_questions(spec, source, np.random.default_rng(1))
    b = plan_questions(spec, source, np.random.default_rng(1))
    assert a == b
    # the song2 override of the segment start is recorded
    assert set(man.loc[man["song"] == "song2", "segment_start_s"]) <= {0.8}


def test_anchor_is_mono_and_low_passed(generated):
    spec, res = generated
    man = pd.read_csv(res.manifest_path)
    for _, row in man[man["condition"] == "anchor"].iterrows():
        x, _ = sf.read(str(res.out_dir / row["file"]))
        assert np.allclose(x[:, 0], x[:, 1])
        spec_pow = np.abs(np.fft.rfft(x[:, 0])) ** 2
        freqs = np.fft.rfftfreq(x.shape[0], 1 / SR)
        assert spec_pow[freqs > 6000].sum() < 1e-3 * spec_pow.sum()


def test_existing_output_needs_force_and_checks_find_planted_faults(generated, tmp_path):
    spec, res = generated
    with pytest.raises(MixevalError, match="already exists"):
        make_listening_test(spec, res.out_dir)
    text = res.xml_path.read_text(encoding="utf-8")
    root_tag = '<setup interface="MUSHRA"'
    faults = {
        "sampleRate": text.replace(root_tag, root_tag + ' sampleRate="48000"'),
        "used twice": text.replace('id="q02-reference"', 'id="q01-reference"'),
        "has a label": text.replace('type="normal"', 'type="normal" label="A"', 1),
        "must end with '/'": text.replace('hostURL="media/synth/"', 'hostURL="media/synth"', 1),
        "not one of": text.replace('interface="MUSHRA"', 'interface="mushra"'),
        "not an NCName": text.replace('id="q01-comment"', 'id="1"'),
        "not found": text.replace('.wav"', 'x.wav"', 1),
        "unexpected <title>": text.replace("</commentboxprefix>", "</commentboxprefix><title>late</title>", 1),
    }
    for needle, bad in faults.items():
        path = res.out_dir / "tests" / "fault.xml"
        path.write_text(bad, encoding="utf-8")
        try:
            problems = check_test_xml(path, root_dir=res.out_dir)
        finally:
            path.unlink()
        assert any(needle in p for p in problems), (needle, problems)


@pytest.mark.skipif(not os.environ.get("WAET_DIR"), reason="set WAET_DIR to a WebAudioEvaluationTool checkout to validate with its XSD")
def test_generated_xml_validates_against_waet_xsd(generated, tmp_path):
    _, res = generated
    validate_xsd(res.xml_path, os.environ["WAET_DIR"])
    bad = tmp_path / "bad.xml"
    bad.write_text(res.xml_path.read_text(encoding="utf-8").replace('id="q02-reference"', 'id="q01-reference"'), encoding="utf-8")
    with pytest.raises(MixevalError, match="XSD validation failed"):
        validate_xsd(bad, os.environ["WAET_DIR"])


def _planted_ratings(man: pd.DataFrame, n_participants: int, rng: np.random.Generator) -> list[dict]:
    """sysA == gt on average exactly (alternating +-0.04 around gt); sysB, input and anchor clearly apart."""
    rated = man[man["role"] != "outside_reference"]
    sessions = []
    for p in range(n_participants):
        ratings = {}
        for page, rows in rated.groupby("page_id"):
            ids = dict(zip(rows["condition"], rows["element_id"]))
            gt = round(0.75 + rng.uniform(-0.05, 0.05), 2)
            ratings[ids["gt"]] = gt
            ratings[ids["sysA"]] = round(gt + (0.04 if p % 2 else -0.04), 2)
            ratings[ids["sysB"]] = round(0.50 + rng.uniform(-0.05, 0.05), 2)
            ratings[ids["input"]] = round(0.30 + rng.uniform(-0.05, 0.05), 2)
            ratings[ids["anchor"]] = round(0.08 + rng.uniform(-0.05, 0.05), 2)
        sessions.append(ratings)
    return sessions


def test_round_trip_planted_differences_are_found(generated, tmp_path):
    spec, res = generated
    man = pd.read_csv(res.manifest_path)
    rng = np.random.default_rng(11)
    saves = tmp_path / "saves"
    saves.mkdir()
    sessions = _planted_ratings(man, 10, rng)
    for i, ratings in enumerate(sessions):
        write_waet_result(saves / f"save-k{i:02d}.xml", res.xml_path, ratings, key=f"k{i:02d}", rng=rng, code=f"P{i:02d}", experience=i)
    # an abandoned session, a key stub, and a complete session with one page not complete
    write_waet_result(saves / "save-zz-partial.xml", res.xml_path, sessions[0], key="zz", rng=rng, state="update")
    (saves / "save-zz-stub.xml").write_text('<waetresult key="stub"/>')
    extra = {k: v for k, v in sessions[1].items()}
    write_waet_result(saves / "save-k99.xml", res.xml_path, extra, key="k99", rng=rng, page_states={"q03": "empty"})
    out = tmp_path / "report"
    result = analyze_listening(saves, manifest=res.manifest_path, out_dir=out)
    a = result.analysis
    assert a.ratings["participant"].nunique() == 11
    skipped = dict(result.results.skipped)
    assert any("update" in why for why in skipped.values()) and any("stub" in why for why in skipped.values())
    assert any(k.startswith("save-k99.xml:q03") for k in skipped)
    assert any("k99" in n and "q03" in n for n in a.notes)
    assert a.conditions == ["sysA", "sysB", "gt", "anchor", "input"]  # manifest order
    assert set(a.groups) == {"multitrack", "single_stem", "single_stem:drums", "single_stem:bass"}
    for group in a.groups:
        pw = a.pairwise[a.pairwise["group"] == group]
        assert len(pw) == 10
        for _, row in pw.iterrows():
            equal = {row["a"], row["b"]} == {"sysA", "gt"}
            assert row["significant"] != equal, (group, row["a"], row["b"], row["p_bonferroni"])
            if equal:
                assert row["p_bonferroni"] > 0.5
    # descriptives equal the planted values (independent mean over what was written, 10 full sessions + k99)
    planted = pd.DataFrame([
        {"element_id": e, "rating": v} for s in sessions + [{k: v for k, v in extra.items() if not k.startswith("q03")}] for e, v in s.items()
    ]).merge(man, on="element_id")
    desc = a.descriptives.set_index(["group", "condition"])
    for (qt, cond), vals in planted.groupby(["question_type", "condition"])["rating"]:
        assert desc.loc[(qt, cond), "mean"] == pytest.approx(vals.mean())
        assert desc.loc[(qt, cond), "n"] == len(vals)
    omni = a.omnibus.set_index("group")
    assert (omni["p"] < 1e-6).all()
    assert any("sysA" in t and "gt" in t for t in a.no_difference)
    for name in ("violin.png", "violin.pdf", "violin_stems.png", "pairwise.tex", "pairwise.md", "descriptives.csv",
                 "omnibus.md", "participants.csv", "ratings.csv", "summary.md"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "no significant difference between Sys sysA and gt" in summary
    pw_csv = pd.read_csv(out / "pairwise.csv")  # ids in a/b, what the plots show in a_label/b_label
    assert set(pw_csv["a"]) | set(pw_csv["b"]) == set(a.conditions)
    labels = {c.name: c.display for c in spec.conditions}
    assert (pw_csv["a_label"] == pw_csv["a"].map(labels)).all() and (pw_csv["b_label"] == pw_csv["b"].map(labels)).all()
    assert "Sys sysA" in set(pw_csv["a_label"]) | set(pw_csv["b_label"])
    assert "Mean mixing experience" in summary


def test_round_trip_pairing_by_participant(generated, tmp_path):
    spec, res = generated
    man = pd.read_csv(res.manifest_path)
    rng = np.random.default_rng(5)
    saves = tmp_path / "saves"
    saves.mkdir()
    for i, ratings in enumerate(_planted_ratings(man, 6, rng)):
        write_waet_result(saves / f"save-{i}.xml", res.xml_path, ratings, key=f"p{i}", rng=rng)
    r = analyze_listening(saves, manifest=res.manifest_path, out_dir=tmp_path / "rep",
                          options=AnalysisOptions(pair_by="participant"), plots=False)
    pw = r.analysis.pairwise
    assert (pw["n"] == 6).all()
    sig = pw.set_index(["group", "a", "b"])["significant"]
    assert not sig[("multitrack", "sysA", "gt")] and sig[("multitrack", "sysB", "gt")]


def test_checkpoint_conditions_go_through_the_renderer_per_stem(generated, tmp_path):
    spec, _ = generated
    calls = []

    def render(condition, input_audio, reference_audio, stem):
        calls.append((condition.name, stem, tuple(input_audio.shape), tuple(reference_audio.shape)))
        return 0.5 * input_audio.numpy()  # arrays are accepted as well as tensors

    conds = (ConditionSpec("model", source="checkpoint", checkpoint="model.pt"), ConditionSpec("input", source="input"))
    small = spec.replace(name="ckpt", conditions=conds, multitrack_questions=1, stems=("drums",))
    res = make_listening_test(small, tmp_path / "ck", renderer=render)
    n = int(1.5 * SR)
    assert [c[1] for c in calls] == list(STEMS) + ["drums"]  # multitrack: one call per stem, then the drums question
    assert all(c[0] == "model" and c[2] == (2, n) and c[3] == (2, n) for c in calls)
    man = pd.read_csv(res.manifest_path)
    for _, rows in man.groupby("page_id"):
        files = dict(zip(rows["condition"], rows["file"]))
        model, _ = sf.read(str(res.out_dir / files["model"]))
        inp, _ = sf.read(str(res.out_dir / files["input"]))
        # 0.5 x input (summed over stems for the mixture) is the input after loudness matching
        assert np.abs(model - inp).max() <= 2 / 32768
    with pytest.raises(MixevalError, match="needs a renderer"):
        make_listening_test(small, tmp_path / "ck2")


def test_include_partial_keeps_complete_pages_of_unfinished_sessions(generated, tmp_path):
    from typer.testing import CliRunner

    from mixeval.cli import app

    spec, res = generated
    man = pd.read_csv(res.manifest_path)
    rng = np.random.default_rng(3)
    sessions = _planted_ratings(man, 6, rng)
    saves = tmp_path / "saves"
    saves.mkdir()
    for i, ratings in enumerate(sessions[:4]):
        write_waet_result(saves / f"save-k{i}.xml", res.xml_path, ratings, key=f"k{i}", rng=rng)
    pages = sorted(man["page_id"].unique())
    # every page rated, tab closed before the final survey; and one that stopped after two pages
    write_waet_result(saves / "save-all.xml", res.xml_path, sessions[4], key="all", rng=rng, state="update",
                      page_states={p: "complete" for p in pages})
    write_waet_result(saves / "save-half.xml", res.xml_path, sessions[5], key="half", rng=rng, state="update",
                      page_states={p: "complete" for p in pages[:2]})
    default = analyze_listening(saves, manifest=res.manifest_path, out_dir=tmp_path / "r0", plots=False)
    assert sorted(default.analysis.ratings["participant"].unique()) == ["k0", "k1", "k2", "k3"]
    assert {"save-all.xml", "save-half.xml"} <= set(dict(default.results.skipped))
    assert "--include-partial" in dict(default.results.skipped)["save-all.xml"]

    out = tmp_path / "r1"
    cli = CliRunner().invoke(app, ["analyze", str(saves), "--manifest", str(res.manifest_path), "--out", str(out),
                                   "--include-partial", "--no-plots"])
    assert cli.exit_code == 0, cli.output
    assert "6 participant(s)" in cli.stdout
    assert "kept 2 unfinished session(s)" in cli.stderr and "save-all.xml (all: 4 complete page(s))" in cli.stderr
    assert "save-half.xml (half: 2 complete page(s))" in cli.stderr
    ratings = pd.read_csv(out / "ratings.csv")
    per = ratings.groupby("participant")["page"].nunique()
    assert per["all"] == 4 and per["half"] == 2 and per["k0"] == 4
    half = ratings[ratings["participant"] == "half"].merge(man, left_on="element", right_on="element_id")
    assert (half["rating"] == half["element_id"].map(sessions[5])).all()  # planted values, un-blinded right
    parts = pd.read_csv(out / "participants.csv").set_index("participant")
    assert parts.loc["all", "session_state"] == "update" and parts.loc["k0", "session_state"] == "complete"
    assert "kept 2 unfinished session(s)" in (out / "summary.md").read_text(encoding="utf-8")
