"""Parts of the reproduce report that need no pipeline run."""

from __future__ import annotations

from mixeval.pipelines.reproduce_report import _revisions


def test_revisions_name_each_revision_with_its_runs(tmp_path):
    assert _revisions(tmp_path) == ""
    for name, rev in (("encoder_ps", "a" * 40), ("encoder_none", "a" * 40)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "git_revision.txt").write_text(rev + "\n")
    assert _revisions(tmp_path) == "git revision `aaaaaaaaaaaa`"
    (tmp_path / "cloner_ps").mkdir()
    (tmp_path / "cloner_ps" / "git_revision.txt").write_text("b" * 40)
    assert _revisions(tmp_path) == "git revisions: cloner_ps at `bbbbbbbbbbbb`; encoder_none, encoder_ps at `aaaaaaaaaaaa`"
