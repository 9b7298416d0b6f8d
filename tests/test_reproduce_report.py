"""Parts of the reproduce report that need no pipeline run."""

from __future__ import annotations

from mixeval.pipelines.reproduce_report import _revisions


def test_revisions_name_each_revision_with_its_runs(tmp_path):
    runs = [tmp_path / name for name in ("encoder_none", "encoder_ps", "cloner_ps")]
    assert _revisions(runs) == ""  # no run folder yet
    for run, rev in zip(runs[:2], ("a" * 40, "a" * 40)):
        run.mkdir()
        (run / "git_revision.txt").write_text(rev + "\n")
    assert _revisions(runs) == "git revision `aaaaaaaaaaaa`"
    runs[2].mkdir()
    (runs[2] / "git_revision.txt").write_text("b" * 40)
    other = tmp_path / "cloner_extra"  # a folder the report does not use is not listed
    other.mkdir()
    (other / "git_revision.txt").write_text("c" * 40)
    assert _revisions(runs) == "git revisions: encoder_none, encoder_ps at `aaaaaaaaaaaa`; cloner_ps at `bbbbbbbbbbbb`"
