"""Listening-test pipelines: generate a WAET test folder, analyse its results."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mixeval.errors import MixevalError
from mixeval.listening.analyze import (
    GROUP_TITLES, Analysis, AnalysisOptions, analyze_ratings, normalize_scale, stem_order, unblind,
)
from mixeval.listening.generate import Renderer, generate_media
from mixeval.listening.manifest import read_manifest, write_manifest
from mixeval.listening.readme import experimenter_readme
from mixeval.listening.results import ResultSet, load_results
from mixeval.listening.spec import ListeningTestSpec
from mixeval.listening.waet import WaetSetup, assert_valid_test, build_test_xml, validate_xsd
from mixeval.outputs import staged_outputs
from mixeval.plots.violin import save_figure, violin_figure
from mixeval.tables.render import to_markdown, write_table
from mixfx.io.atomic import atomic_dir, atomic_write
from mixfx.io.paths import check_output_dir
from mixfx.progress import Progress

logger = logging.getLogger(__name__)

__all__ = ["AnalyzeResult", "MakeResult", "analyze_listening", "make_listening_test", "violin_panels"]

_FLOATS = {
    "p": "{:.3g}", "p_bonferroni": "{:.3g}", "p_gg": "{:.3g}", "friedman_p": "{:.3g}",
    "t": "{:.2f}", "d_z": "{:.2f}", "f": "{:.2f}", "friedman_chi2": "{:.2f}", "eps_gg": "{:.3f}", "eta_p2": "{:.3f}",
}


@dataclass
class MakeResult:
    """What :func:`make_listening_test` wrote.

    ``level_lufs`` is the one loudness of every file; ``peak_limited`` lists the files that
    would have exceeded the true-peak ceiling at the target, which is why the level is lower.
    """

    out_dir: Path
    xml_path: Path
    manifest_path: Path
    n_pages: int
    n_files: int
    clipped_files: list[str]
    xsd_validated: bool
    level_lufs: float = float("nan")
    peak_limited: list[str] = field(default_factory=list)


def make_listening_test(
    spec: ListeningTestSpec,
    out_dir: str | os.PathLike | None = None,
    *,
    waet_dir: str | os.PathLike | None = None,
    renderer: Renderer | None = None,
    overwrite: bool = False,
    progress: Progress = None,
) -> MakeResult:
    """Generate a WAET listening test folder (atomically: all of it or nothing).

    Layout of ``out_dir`` (default ``listening_test/<name>``)::

        tests/<name>.xml      media/<name>/<token>.{wav,flac}      manifest.csv   README.md   spec.json

    Before the folder appears, the XML passes the structural check (every media file exists
    and decodes, ids unique, ...) and, with ``waet_dir``, WAET's own XSD.

    Raises:
        MixevalError: invalid spec, missing or silent audio, an existing ``out_dir`` without
            ``overwrite``, or a failed check.
        MixfxError: ``out_dir`` is a file, lies under a file, cannot be written or lies inside
            the pre-rendered folder (checked before any audio is read).
    """
    spec = spec.validate()
    out = Path(out_dir) if out_dir is not None else Path("listening_test") / spec.name
    check_output_dir(out, option="--out", inputs=[spec.prerendered] if spec.prerendered is not None else [])
    if out.exists() and not overwrite:
        raise MixevalError(f"{out}: already exists; pass --force to replace it (a new test gets new blinded ids)")
    if waet_dir is not None and not (Path(waet_dir) / "xml" / "test-schema.xsd").is_file():
        raise MixevalError(f"{waet_dir}: not a WAET checkout (no xml/test-schema.xsd)")
    with atomic_dir(out) as tmp:
        test = generate_media(spec, tmp / "media" / spec.name, renderer=renderer, progress=progress)
        setup = WaetSetup(
            host_url=f"media/{spec.name}/", axis=spec.axis, question=spec.question, scale=spec.scale,
            instructions=spec.instructions, project_return=spec.project_return,
        )
        xml_path = tmp / "tests" / f"{spec.name}.xml"
        with atomic_write(xml_path, "wb") as f:
            f.write(build_test_xml(setup, test.pages))
        assert_valid_test(xml_path, root_dir=tmp)
        if waet_dir is not None:
            validate_xsd(xml_path, waet_dir)
        write_manifest(test.manifest, tmp / "manifest.csv")
        with atomic_write(tmp / "spec.json", "w", encoding="utf-8") as f:
            json.dump(spec.to_dict(), f, indent=2, ensure_ascii=False)
        with atomic_write(tmp / "README.md", "w", encoding="utf-8") as f:
            f.write(experimenter_readme(spec, test, xsd_checked=waet_dir is not None))
    for c in test.clipped_files:
        logger.warning("clipped: %s", c)
    return MakeResult(
        out_dir=out, xml_path=out / "tests" / f"{spec.name}.xml", manifest_path=out / "manifest.csv",
        n_pages=len(test.pages), n_files=len(test.manifest), clipped_files=test.clipped_files,
        xsd_validated=waet_dir is not None, level_lufs=test.level_lufs, peak_limited=test.peak_limited,
    )


@dataclass
class AnalyzeResult:
    """What :func:`analyze_listening` found and wrote."""

    analysis: Analysis
    results: ResultSet
    files: list[Path] = field(default_factory=list)
    summary: str = ""


def _group_title(name: str) -> str:
    return GROUP_TITLES.get(name, name.replace("single_stem:", "single stem: "))


def analyze_listening(
    results: str | os.PathLike,
    *,
    manifest: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "reports/listening",
    options: AnalysisOptions = AnalysisOptions(),
    axis: str | None = None,
    plots: bool = True,
    include_partial: bool = False,
) -> AnalyzeResult:
    """Read results, un-blind them with the manifest, compute statistics, write tables and plots.

    Writes into ``out_dir``: ``ratings.csv`` (un-blinded long table), ``descriptives``,
    ``pairwise`` (condition ids in ``a``/``b``, display labels in ``a_label``/``b_label``), ``omnibus`` and ``participants`` tables (``.csv``/``.md``/``.tex``),
    ``violin.{png,pdf}`` (one panel per question type, like Fig. 3), ``violin_stems.{png,pdf}``
    (per instrument, when several) and ``summary.md``. They are staged and published together
    (:func:`mixeval.outputs.staged_outputs`): a failure while writing leaves ``out_dir`` as it was.

    ``include_partial`` keeps WAET sessions saved with ``state="update"`` (every page may be
    rated, but the tab was closed before the final survey) with their complete pages; the
    notes and ``participants`` (column ``session_state``) say which.

    Raises:
        MixevalError: any bad input (see :func:`load_results`, :func:`read_manifest`,
            :func:`unblind`, :func:`normalize_scale`).
        MixfxError: ``out_dir`` is a file, lies under a file or cannot be written (checked
            before the results are read).
    """
    options = options.validate()
    out = check_output_dir(out_dir, option="--out")
    result = load_results(results, axis=axis, include_partial=include_partial)
    man = read_manifest(manifest) if manifest is not None else None
    ratings, notes = unblind(result, man)
    ratings, top = normalize_scale(ratings, options.scale)
    expected = sorted(set(man["page_id"])) if man is not None else None
    order = options.order
    if not order and man is not None:
        rated = man[man["role"] != "outside_reference"]
        order = tuple(c for c in pd.unique(rated["condition"]) if c in set(ratings["condition"]))
    analysis = analyze_ratings(ratings, dataclasses.replace(options, order=order), expected_pages=expected)
    analysis.scale = top
    analysis.notes = result.notes + notes + analysis.notes
    summary = _summary(analysis, result, results, options)
    new_folder = not out.exists()
    try:
        with staged_outputs(out, prefix=".analyze.") as staged:  # every file or none of them
            _write_analysis(staged.folder, analysis, result, summary, plots)
    except BaseException:
        if new_folder and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    files = staged.files
    return AnalyzeResult(analysis=analysis, results=result, files=files, summary=summary)


def _write_analysis(out: Path, analysis: Analysis, result: ResultSet, summary: str, plots: bool) -> None:
    """The tables, figures and summary of :func:`analyze_listening`, written into ``out``."""
    write_table(analysis.ratings, out / "ratings", formats=("csv",))
    write_table(analysis.descriptives, out / "descriptives", bold_best={"mean": "max", "median": "max"}, best_within="group",
                caption="Listening test: ratings per condition", label="tab:listening")
    pw = _with_labels(analysis.pairwise, analysis.labels)
    write_table(pw, out / "pairwise", float_format=_float_format(pw),
                caption="Post-hoc paired t-tests with Bonferroni correction", label="tab:listening-posthoc")
    write_table(analysis.omnibus, out / "omnibus", float_format=_float_format(analysis.omnibus))
    write_table(_participants_table(analysis, result), out / "participants", formats=("csv", "md"))
    if plots:
        for name, panels in violin_panels(analysis).items():
            save_figure(violin_figure(analysis.ratings, panels, analysis.conditions, labels=analysis.labels), out / name)
    with atomic_write(out / "summary.md", "w", encoding="utf-8") as f:
        f.write(summary)


def violin_panels(analysis: Analysis) -> dict[str, list[tuple[str, pd.Series]]]:
    """The violin figures to draw: ``{file stem: [(panel title, row mask of analysis.ratings)]}``.

    ``violin``: one panel per question type (single stem, then multitrack, as in Fig. 3).
    ``violin_stems`` (with several instruments): one panel per instrument, in the order drums,
    bass, other, vocals whatever the order of the data.
    """
    r = analysis.ratings
    top = [g for g in analysis.groups if ":" not in g]
    figures = {"violin": [(_group_title(g).capitalize(), r["question_type"] == g) for g in top[::-1]]}
    stems = stem_order(g.split(":", 1)[1] for g in analysis.groups if g.startswith("single_stem:"))
    if stems:
        figures["violin_stems"] = [(s, (r["question_type"] == "single_stem") & (r["stem"] == s)) for s in stems]
    return figures


def _with_labels(pairwise: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """``pairwise`` with ``a_label``/``b_label`` (display labels) after the condition ids ``a``/``b``."""
    pw = pairwise.copy()
    at = list(pw.columns).index("b") + 1 if "b" in pw.columns else len(pw.columns)
    pw.insert(at, "b_label", pw["b"].map(lambda c: labels.get(c, c)))
    pw.insert(at, "a_label", pw["a"].map(lambda c: labels.get(c, c)))
    return pw


def _float_format(df: pd.DataFrame) -> dict:
    return {c: _FLOATS.get(c, "{:.3f}") for c in df.columns}


def _participants_table(analysis: Analysis, result: ResultSet) -> pd.DataFrame:
    table = analysis.participants.copy()
    if not result.sessions.empty and "code" in result.sessions.columns:
        extra = result.sessions.set_index("participant")[["code", "experience_years"]]
        if "state" in result.sessions.columns:
            extra["session_state"] = result.sessions.set_index("participant")["state"]
        table = table.join(extra, on="participant")
    return table


def _summary(analysis: Analysis, result: ResultSet, source, options: AnalysisOptions) -> str:
    n_part = analysis.ratings["participant"].nunique()
    rescaled = " rescaled to [0, 1]." if analysis.scale != 1 else "."
    lines = ["# Listening test analysis", "", f"Results: `{source}` ({result.kind}); {n_part} participant(s), "
             f"{len(analysis.ratings)} ratings, scale [0, {analysis.scale:g}]{rescaled}"]
    if "experience_years" in result.sessions.columns and result.sessions["experience_years"].notna().any():
        lines.append(f"Mean mixing experience: {np.nanmean(result.sessions['experience_years']):.1f} years.")
    if result.skipped:
        lines += ["", f"Skipped {len(result.skipped)} session(s)/page(s):"] + [f"- {w}: {why}" for w, why in result.skipped]
    pair_unit = "participant × question" if options.pair_by == "question" else "participant (mean over questions)"
    desc = to_markdown(analysis.descriptives, bold_best={"mean": "max", "median": "max"}, best_within="group")
    omni = to_markdown(analysis.omnibus, float_format=_float_format(analysis.omnibus))
    lines += ["", "## Ratings per condition", "", desc, "## Omnibus tests (repeated-measures ANOVA, Friedman)", "", omni,
              f"## Post-hoc paired t-tests (paired by {pair_unit}, Bonferroni-corrected, alpha = {options.alpha:g})", ""]
    if analysis.no_difference:
        lines += [f"- {t}" for t in analysis.no_difference]
        lines.append(f"- all other pairs differ significantly (Bonferroni p < {options.alpha:g}).")
    else:
        lines.append(f"All pairs differ significantly (Bonferroni p < {options.alpha:g}).")
    if analysis.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in analysis.notes]
    return "\n".join(lines) + "\n"
