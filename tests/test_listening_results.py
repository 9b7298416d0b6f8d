"""Reading listening-test results: the real WAET result file, saves folders, score_parser CSVs, long CSVs."""

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from mixeval.errors import MixevalError
from mixeval.listening.results import load_results, parse_waet_result, read_long_csv, read_score_parser_csvs
from mixeval.listening.xmlsafe import parse_xml_bytes

WAET_REF = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "waet"
REAL = WAET_REF / "result_mushra_example.xml"


def _real():
    if not REAL.is_file():
        pytest.skip("shared/reference/waet/result_mushra_example.xml not available")
    return REAL


def test_real_waet_result_parsed_correctly():
    path = _real()
    # independent reading with ElementTree: every rated element's <value>
    root = ET.parse(path).getroot()
    expected = {
        el.get("ref"): float(el.find("value").text)
        for el in root.iter("audioelement")
        if el.get("type") != "outside-reference" and el.find("value") is not None
    }
    assert len(expected) == 5
    rows, session, skipped = parse_waet_result(path)
    assert skipped == []
    assert session["participant"] == root.get("key") and session["state"] == "complete"
    assert session["code"] == "P001"
    got = {r["element"]: r["rating"] for r in rows}
    assert got == expected
    assert {r["page"] for r in rows} == {"song01"}
    assert {r["axis"] for r in rows} == {"similarity"}
    assert not any(r["element"].endswith(("reference", "input")) for r in rows)  # outside references dropped
    # presentation order is kept as presentedId labels 1..5
    assert sorted(r["presented_id"] for r in rows) == ["1", "2", "3", "4", "5"]
    by_presented = {r["presented_id"]: r["element"] for r in rows}
    first = [el for el in root.iter("audioelement") if el.get("type") == "normal"][0]
    assert by_presented["1"] == first.get("ref")


def test_saves_folder_skips_incomplete_sessions_and_reports_why(tmp_path):
    real = _real()
    shutil.copy(real, tmp_path / "save-a.xml")
    (tmp_path / "save-stub.xml").write_text('<waetresult key="zzz"/>')
    text = real.read_text(encoding="utf-8").replace('state="complete"', 'state="update"', 1)
    (tmp_path / "save-partial.xml").write_text(text, encoding="utf-8")
    (tmp_path / "save-broken.xml").write_text("<waetresult key='x' state='complete'><page")
    res = load_results(tmp_path)
    assert res.kind == "waet"
    assert len(res.ratings) == 5 and res.ratings["participant"].nunique() == 1
    reasons = dict(res.skipped)
    assert set(reasons) == {"save-stub.xml", "save-partial.xml", "save-broken.xml"}
    assert "stub" in reasons["save-stub.xml"]
    assert "update" in reasons["save-partial.xml"]
    assert "not well-formed" in reasons["save-broken.xml"]


def test_incomplete_page_in_complete_session_is_skipped(tmp_path):
    text = _real().read_text(encoding="utf-8")
    text = text.replace('<page ref="song01" presentedId="0" state="complete">', '<page ref="song01" presentedId="0" state="empty">')
    (tmp_path / "save-a.xml").write_text(text, encoding="utf-8")
    with pytest.raises(MixevalError, match="hold no ratings"):
        load_results(tmp_path)


def test_no_complete_sessions_and_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixevalError, match="holds no results"):
        load_results(tmp_path / "empty")
    (tmp_path / "stubs").mkdir()
    (tmp_path / "stubs" / "save-1.xml").write_text('<waetresult key="a" state="empty"/>')
    with pytest.raises(MixevalError, match="no complete WAET sessions"):
        load_results(tmp_path / "stubs")
    with pytest.raises(MixevalError, match="not found"):
        load_results(tmp_path / "missing")


def test_xml_with_dtd_or_entities_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><waetresult>&b;</waetresult>'
    with pytest.raises(MixevalError, match="DOCTYPE"):
        parse_xml_bytes(bomb, "bomb.xml")
    external = b'<!DOCTYPE r SYSTEM "http://example.com/x.dtd"><r/>'
    with pytest.raises(MixevalError, match="DOCTYPE"):
        parse_xml_bytes(external, "ext.xml")
    with pytest.raises(MixevalError, match="undefined entity"):
        parse_xml_bytes(b"<r>&x;</r>", "undef.xml")


def test_non_numeric_rating_is_an_error(tmp_path):
    text = _real().read_text(encoding="utf-8").replace('<value interface-name="similarity">0.15</value>',
                                                       '<value interface-name="similarity">abc</value>')
    (tmp_path / "save-a.xml").write_text(text, encoding="utf-8")
    with pytest.raises(MixevalError, match="'abc' is not a number"):
        load_results(tmp_path)


def test_score_parser_csvs(tmp_path):
    ratings = tmp_path / "ratings"
    ratings.mkdir()
    (ratings / "q01-similarity-ratings.csv").write_text(
        "file_keys,q01-aa,q01-bb\nkey1,0.75,0.55\nkey2,0.5,\n", encoding="utf-8"
    )
    (ratings / "mt-song-02-similarity-ratings.csv").write_text("file_keys,mt-song-02-cc\nkey1,0.1\n", encoding="utf-8")
    res = load_results(tmp_path)  # finds the ratings/ subfolder
    assert res.kind == "score_parser"
    df = res.ratings.sort_values(["page", "participant", "element"]).reset_index(drop=True)
    assert df[["participant", "page", "element", "rating"]].values.tolist() == [
        ["key1", "mt-song-02", "mt-song-02-cc", 0.1],
        ["key1", "q01", "q01-aa", 0.75],
        ["key1", "q01", "q01-bb", 0.55],
        ["key2", "q01", "q01-aa", 0.5],
    ]
    assert set(df["axis"]) == {"similarity"}
    (ratings / "bad-x-ratings.csv").write_text("key,q01-aa\nk,0.2\n", encoding="utf-8")
    with pytest.raises(MixevalError, match="file_keys"):
        read_score_parser_csvs(ratings)


def test_long_csv_aliases_missing_columns_and_bad_values(tmp_path):
    good = tmp_path / "long.csv"
    pd.DataFrame({"Subject": ["s1", "s1"], "question": ["q1", "q1"], "system": ["a", "b"], "score": [40, 60],
                  "question_type": ["multitrack"] * 2}).to_csv(good, index=False)
    res = read_long_csv(good)
    assert res.ratings[["participant", "page", "condition", "rating"]].values.tolist() == [["s1", "q1", "a", 40.0], ["s1", "q1", "b", 60.0]]
    assert res.ratings["question_type"].tolist() == ["multitrack"] * 2
    missing = tmp_path / "missing.csv"
    missing.write_text("participant,page,rating\np,q,0.5\n")
    with pytest.raises(MixevalError, match=r"missing column\(s\) \['element or condition'\]"):
        load_results(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text("participant,page,element,rating\np,q,e,high\n")
    with pytest.raises(MixevalError, match="row 2: rating 'high' is not a number"):
        load_results(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(MixevalError, match="empty"):
        load_results(empty)


def test_several_axes_need_a_choice(tmp_path):
    f = tmp_path / "long.csv"
    f.write_text("participant,page,element,rating,axis\np,q,e1,0.5,a\np,q,e1,0.7,b\n")
    with pytest.raises(MixevalError, match="several axes"):
        load_results(f)
    assert load_results(f, axis="b").ratings["rating"].tolist() == [0.7]
    with pytest.raises(MixevalError, match="no ratings on axis 'c'"):
        load_results(f, axis="c")
