"""The ``mixeval`` command line: thin typer commands that call :mod:`mixeval.pipelines`.

User errors (:class:`~mixeval.errors.MixevalError`, :class:`~mixfx.errors.MixfxError`) become one
line on stderr and exit status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mixeval.errors import MixevalError
from mixfx.errors import MixfxError

app = typer.Typer(
    name="mixeval",
    help="Evaluation of music mixing style transfer (Koo et al., ICASSP 2023): listening tests, metrics, tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@contextlib.contextmanager
def user_errors():
    """Turn the packages' user errors into one stderr line and exit status 1."""
    try:
        yield
    except (MixevalError, MixfxError) as err:
        typer.echo("error: " + " ".join(str(err).split("\n")), err=True)
        raise typer.Exit(1) from None


@app.callback()
def _setup(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def _csv(text: Optional[str]) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()


@app.command("make-listening-test")
def make_listening_test(
    spec: Annotated[Optional[Path], typer.Argument(help="TOML spec (conditions, songs, counts); options below override it.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: listening_test/<name>).")] = None,
    prerendered: Annotated[Optional[Path], typer.Option(help="Folder <prerendered>/{input,reference,<condition>}/<song>/<stem|mixture>.wav.")] = None,
    conditions: Annotated[Optional[str], typer.Option(help="Comma-separated conditions (pre-rendered folders or built-ins input, anchor, reference).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Test name (tests/<name>.xml, media/<name>/).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for song choice, blinded names and order.")] = None,
    multitrack_questions: Annotated[Optional[int], typer.Option(help="Multitrack questions (default: spec, else 4).")] = None,
    stem_questions: Annotated[Optional[int], typer.Option(help="Single-stem questions per instrument (default: spec, else 2).")] = None,
    stems: Annotated[Optional[str], typer.Option(help="Comma-separated instruments for single-stem questions.")] = None,
    segment_seconds: Annotated[Optional[float], typer.Option(help="Excerpt length in seconds.")] = None,
    segment_start: Annotated[Optional[float], typer.Option(help="Excerpt start in seconds (all songs).")] = None,
    target_lufs: Annotated[Optional[float], typer.Option(help="Loudness of every file in LUFS (default: spec, else -23).")] = None,
    sample_rate: Annotated[Optional[int], typer.Option(help="Sample rate of every file in Hz (default: spec, else 44100).")] = None,
    waet: Annotated[Optional[Path], typer.Option(help="WAET checkout: also validate against its xml/test-schema.xsd.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder.")] = False,
) -> None:
    """Generate a WAET listening test (MUSHRA pages, blinded loudness-matched media, manifest.csv, README)."""
    from mixeval.listening.spec import ListeningTestSpec, load_spec
    from mixeval.pipelines.listening import make_listening_test as run

    with user_errors():
        if spec is not None:
            base = load_spec(spec)
        else:
            if not conditions or prerendered is None:
                raise MixevalError("give a SPEC file, or at least --prerendered DIR and --conditions a,b,...")
            base = ListeningTestSpec.from_dict({"conditions": list(_csv(conditions)), "prerendered": str(prerendered)}, source="options")
        changes = dict(
            name=name, seed=seed, multitrack_questions=multitrack_questions, stem_questions=stem_questions,
            segment_seconds=segment_seconds, segment_start_seconds=segment_start, target_lufs=target_lufs,
            sample_rate=sample_rate, prerendered=prerendered, stems=_csv(stems) or None,
        )
        if spec is not None and conditions:
            changes["conditions"] = ListeningTestSpec.from_dict(
                {"conditions": list(_csv(conditions)), "prerendered": "."}, source="--conditions").conditions
        resolved = base.replace(**changes)
        show = sys.stderr.isatty()

        def progress(done, total, q):
            if show:
                typer.echo(f"\rquestion {done}/{total} ({q.song}, {q.stem})" + " " * 10, err=True, nl=done == total)

        result = run(resolved, out, waet_dir=waet, overwrite=force, progress=progress)
    typer.echo(f"wrote {result.out_dir}: {result.n_pages} pages, {result.n_files} media files")
    typer.echo(f"  test:     {result.xml_path}" + ("  (XSD-validated)" if result.xsd_validated else "  (structural check passed)"))
    typer.echo(f"  manifest: {result.manifest_path}")
    if result.clipped_files:
        typer.echo(f"  clipped:  {len(result.clipped_files)} file(s): " + "; ".join(result.clipped_files))


@app.command("analyze")
def analyze(
    results: Annotated[Path, typer.Argument(help="WAET saves/ folder or result .xml, score_parser *-ratings.csv (or folder), or a long-format CSV.")],
    manifest: Annotated[Optional[Path], typer.Option(help="manifest.csv from make-listening-test (maps element ids to conditions).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("reports/listening"),
    alpha: Annotated[float, typer.Option(help="Significance level after Bonferroni correction.")] = 0.05,
    pair_by: Annotated[str, typer.Option(help="Pairing unit: 'question' (participant × question) or 'participant'.")] = "question",
    scale: Annotated[str, typer.Option(help="Rating scale: auto, 1 or 100.")] = "auto",
    axis: Annotated[Optional[str], typer.Option(help="Rating axis (WAET interface name) when results hold several.")] = None,
    order: Annotated[Optional[str], typer.Option(help="Comma-separated condition order for tables and plots.")] = None,
    screen_condition: Annotated[Optional[str], typer.Option(help="Condition for post-screening (default: the hidden reference, if any).")] = None,
    screen_threshold: Annotated[float, typer.Option(help="Post-screening: a rating below this (0–1) is a miss.")] = 0.9,
    screen_max_fraction: Annotated[float, typer.Option(help="Post-screening: flag above this fraction of misses.")] = 0.15,
    exclude_flagged: Annotated[bool, typer.Option("--exclude-flagged", help="Drop flagged participants.")] = False,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the violin plots.")] = False,
) -> None:
    """Analyse listening-test results: descriptives, RM-ANOVA/Friedman, Bonferroni paired t-tests, violin plots."""
    from mixeval.listening.analyze import AnalysisOptions
    from mixeval.pipelines.listening import analyze_listening

    with user_errors():
        options = AnalysisOptions(
            alpha=alpha, pair_by=pair_by, scale=scale, order=_csv(order), screen_condition=screen_condition,
            screen_threshold=screen_threshold, screen_max_fraction=screen_max_fraction, exclude_flagged=exclude_flagged,
        ).validate()
        res = analyze_listening(results, manifest=manifest, out_dir=out, options=options, axis=axis, plots=not no_plots)
    a = res.analysis
    n_part, n_skip = a.ratings["participant"].nunique(), len(res.results.skipped)
    typer.echo(f"{n_part} participant(s), {len(a.ratings)} ratings; skipped {n_skip} session(s)/page(s)")
    for line in a.no_difference:
        typer.echo(f"  {line}")
    for note in a.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {len(res.files)} files to {out}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except (MixevalError, MixfxError) as err:  # raised outside a command's user_errors block
        typer.echo("error: " + " ".join(str(err).split("\n")), err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
