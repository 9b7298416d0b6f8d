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
    from mixfx.io.paths import os_error_message

    try:
        yield
    except (MixevalError, MixfxError) as err:
        typer.echo("error: " + " ".join(str(err).split("\n")), err=True)
        raise typer.Exit(1) from None
    except OSError as err:
        typer.echo(f"error: {os_error_message(err)}", err=True)
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


def _limit_threads(stack: contextlib.ExitStack, threads: Optional[int]) -> None:
    """``--threads``: cap torch and OpenMP / BLAS threads for the rest of the command."""
    if threads is None:
        return
    if threads < 1:
        raise MixevalError(f"--threads: expected ≥ 1, got {threads}")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    stack.enter_context(threadpool_limits(threads))


def _evalset(base, *, segments: Optional[int], configs: Optional[int], seconds: Optional[float], single_fx: Optional[str],
             **fields):
    """The item-set config of ``disentangle`` / ``retrieval``: ``base`` with the given options applied."""
    from mixeval.evalset import EvalSetConfig

    changes = {k: v for k, v in dict(segments=segments, configs=configs, seconds=seconds).items() if v is not None}
    return EvalSetConfig(**{**base.to_dict(), **changes, **fields,
                            "single_fx": _csv(single_fx) if single_fx is not None else base.single_fx})


@app.command("make-listening-test")
def make_listening_test(
    spec: Annotated[Optional[Path], typer.Argument(help="TOML spec (conditions, songs, counts); options below override it.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: listening_test/<name>).")] = None,
    prerendered: Annotated[Optional[Path], typer.Option(help="Folder <prerendered>/{input,reference,<condition>}/<song>/<stem|mixture> audio files (.wav/.flac/.ogg/.mp3/.aiff).")] = None,
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
    media_format: Annotated[Optional[str], typer.Option(help="Media files: wav or flac (16-bit; FLAC is lossless and about half the size). Default: spec, else wav.")] = None,
    waet: Annotated[Optional[Path], typer.Option(help="WAET checkout: also validate against its xml/test-schema.xsd.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda for checkpoint conditions (default: cuda when available).")] = None,
) -> None:
    """Generate a WAET listening test (MUSHRA pages, blinded loudness-matched media, manifest.csv, README).

    Conditions with source = "checkpoint" (checkpoint = "ENCODER.pt,CLONER.pt") are rendered with mixfx
    style transfer of each question's input towards its reference.
    """
    from mixeval.listening.render_models import CheckpointRenderer
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
            sample_rate=sample_rate, prerendered=prerendered, stems=_csv(stems) or None, media_format=media_format,
        )
        if spec is not None and conditions:
            changes["conditions"] = ListeningTestSpec.from_dict(
                {"conditions": list(_csv(conditions)), "prerendered": "."}, source="--conditions").conditions
        resolved = base.replace(**changes)
        renderer = CheckpointRenderer(device)
        renderer.check(resolved.conditions)
        result = run(resolved, out, waet_dir=waet, overwrite=force, progress=True, renderer=renderer)
    typer.echo(f"wrote {result.out_dir}: {result.n_pages} pages, {result.n_files} media files")
    typer.echo(f"  test:     {result.xml_path}" + ("  (XSD-validated)" if result.xsd_validated else "  (structural check passed)"))
    typer.echo(f"  manifest: {result.manifest_path}")
    typer.echo(f"  level:    {result.level_lufs:.2f} LUFS for every file")
    if result.peak_limited:
        typer.echo(f"  lowered:  below the target because {len(result.peak_limited)} file(s) would exceed the true-peak ceiling: "
                   + "; ".join(result.peak_limited))
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
    include_partial: Annotated[bool, typer.Option("--include-partial", help="Keep the complete pages of unfinished WAET sessions (state=\"update\": the tab was closed, e.g. before the final survey).")] = False,
) -> None:
    """Analyse listening-test results: descriptives, RM-ANOVA/Friedman, Bonferroni paired t-tests, violin plots."""
    from mixeval.listening.analyze import AnalysisOptions
    from mixeval.pipelines.listening import analyze_listening

    with user_errors():
        options = AnalysisOptions(
            alpha=alpha, pair_by=pair_by, scale=scale, order=_csv(order), screen_condition=screen_condition,
            screen_threshold=screen_threshold, screen_max_fraction=screen_max_fraction, exclude_flagged=exclude_flagged,
        ).validate()
        res = analyze_listening(results, manifest=manifest, out_dir=out, options=options, axis=axis, plots=not no_plots,
                                include_partial=include_partial)
    a = res.analysis
    n_part, n_skip = a.ratings["participant"].nunique(), len(res.results.skipped)
    typer.echo(f"{n_part} participant(s), {len(a.ratings)} ratings; skipped {n_skip} session(s)/page(s)")
    for line in a.no_difference:
        typer.echo(f"  {line}")
    for note in a.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {len(res.files)} files to {out}")


# options shared by disentangle and retrieval (same item sets, same embedding cache)
_DataOpt = Annotated[Path, typer.Option("--data", help="Dataset (MUSDB18-HQ layout; the paper uses the FX-normalized test split).")]
_EncoderOpt = Annotated[Optional[list[Path]], typer.Option("--encoder", "-e", help="FXencoder checkpoint (repeatable).")]
_LabelOpt = Annotated[Optional[list[str]], typer.Option("--label", help="Row label of each --encoder, in order (default: checkpoint metadata, else file name).")]
_SegmentsOpt = Annotated[Optional[int], typer.Option(help="Segments per set (paper: 25).")]
_ConfigsOpt = Annotated[Optional[int], typer.Option(help="FX configurations per set (paper: 10).")]
_SecondsOpt = Annotated[Optional[float], typer.Option(help="Segment length in seconds (default: 2^19 samples ≈ 11.89 s).")]
_SingleFxOpt = Annotated[Optional[str], typer.Option(help="Comma-separated effects for the single-FX cases (default: all six).")]
_SplitOpt = Annotated[str, typer.Option(help="Dataset split.")]
_SegmentsPerSongOpt = Annotated[int, typer.Option(help="Most segments from one song (1: all from different songs).")]
_BatchSizeOpt = Annotated[int, typer.Option(help="Items per FX / encoder batch.")]
_DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")]
_IrDirOpt = Annotated[Optional[Path], typer.Option(help="Impulse-response folder for the reverb (default: built-in synthetic bank).")]


@app.command("disentangle")
def disentangle(
    data: _DataOpt,
    encoder: _EncoderOpt = None,
    label: _LabelOpt = None,
    baseline: Annotated[Optional[list[str]], typer.Option("--baseline", help="Extra baseline rows: random (random-init FXencoder), mfcc (hand-crafted features). Pure noise is always shown.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("reports/disentangle"),
    protocol: Annotated[str, typer.Option(help="paper: each FX configuration shared by all segments (Table 1); iid: one configuration per item.")] = "paper",
    quick: Annotated[bool, typer.Option("--quick", help="Smoke-test sizes: 2 segments × 10 configs of 1 s, 2 seeds, --dci-grid tiny, --dci-trees 3 (explicit options win).")] = False,
    segments: _SegmentsOpt = None,
    configs: _ConfigsOpt = None,
    seconds: _SecondsOpt = None,
    seeds: Annotated[Optional[int], typer.Option(help="Seeds; each redraws segments, FX and forests (paper: 4).")] = None,
    dci_grid: Annotated[Optional[str], typer.Option(help="DCI-RF grid: reference (5×4, 10-fold CV), small (2×2, 5-fold), tiny (1 forest, no CV).")] = None,
    dci_trees: Annotated[Optional[int], typer.Option(help="Trees per random forest (reference: 10).")] = None,
    dci_backend: Annotated[str, typer.Option(help="DCI-RF forests: auto (numba when it imports), numba (presorted, several times faster), sklearn. Same law, different draws.")] = "auto",
    single_fx: _SingleFxOpt = None,
    split: _SplitOpt = "test",
    segments_per_song: _SegmentsPerSongOpt = 1,
    categorical: Annotated[str, typer.Option(help="Pan law / IR index factors: drop or onehot.")] = "drop",
    ideal: Annotated[bool, typer.Option("--ideal/--no-ideal", help="Add the reference row codes = factors.")] = True,
    tsne_single: Annotated[str, typer.Option(help="Fig. 2 single-FX panels: 'effect' (colour by effect) or one effect (colour by configuration).")] = "effect",
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Draw Fig. 2 (t-SNE and PCA).")] = True,
    batch_size: _BatchSizeOpt = 8,
    device: _DeviceOpt = "auto",
    jobs: Annotated[Optional[int], typer.Option(help="Parallel forest fits, -1 for all cores (default: all cores for large sets, else 1).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Torch / OpenMP CPU threads; fewer helps on a busy machine (default: torch's).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding / metric cache (default: OUT/cache).")] = None,
    ir_dir: _IrDirOpt = None,
) -> None:
    """Disentanglement of FX encoders (paper §3.3): Table 1 (DCIMIG, DCI RF Expl) and Fig. 2 (t-SNE)."""
    from mixeval.pipelines.disentangle import DisentangleConfig, run_disentangle

    with user_errors(), contextlib.ExitStack() as stack:
        _limit_threads(stack, threads)
        base = DisentangleConfig.quick() if quick else DisentangleConfig()
        ev = _evalset(base.evalset, segments=segments, configs=configs, seconds=seconds, protocol=protocol, split=split,
                      segments_per_song=segments_per_song, single_fx=single_fx, categorical=categorical)
        cfg = DisentangleConfig(
            evalset=ev, seeds=seeds if seeds is not None else base.seeds, dci_grid=dci_grid or base.dci_grid,
            dci_trees=dci_trees if dci_trees is not None else base.dci_trees, dci_backend=dci_backend,
            baselines=tuple(baseline or ()),
            ideal=ideal, tsne_single=tsne_single, figures=figures, batch_size=batch_size, device=device, n_jobs=jobs,
        )
        res = run_disentangle(list(encoder or ()), data, out, labels=list(label or ()), config=cfg,
                              cache_dir=cache_dir, ir_dir=ir_dir, progress=True)
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(res.markdown)
    t = res.timings
    typer.echo(f"wrote {len(res.files)} files to {out} in {t['total']:.1f} s "
               f"(embedding {t['embed']:.1f} s, metrics {t['metrics']:.1f} s; cache: {res.cache_hits} hits, {res.cache_misses} misses)")


@app.command("retrieval")
def retrieval(
    data: _DataOpt,
    encoder: _EncoderOpt = None,
    label: _LabelOpt = None,
    baseline: Annotated[Optional[list[str]], typer.Option("--baseline", help="Extra baseline rows: random (random-init FXencoder), mfcc (hand-crafted features). Pure noise and the analytic chance level are always shown.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("reports/retrieval"),
    protocol: Annotated[str, typer.Option(help="Only paper (configurations shared by all segments) defines positives; iid is refused.")] = "paper",
    quick: Annotated[bool, typer.Option("--quick", help="Smoke-test sizes, as disentangle --quick: 2 segments × 10 configs of 1 s, 2 seeds (explicit options win).")] = False,
    segments: _SegmentsOpt = None,
    configs: _ConfigsOpt = None,
    seconds: _SecondsOpt = None,
    seeds: Annotated[Optional[int], typer.Option(help="Seeds; each redraws segments and FX (paper: 4).")] = None,
    single_fx: _SingleFxOpt = None,
    split: _SplitOpt = "test",
    segments_per_song: _SegmentsPerSongOpt = 1,
    batch_size: _BatchSizeOpt = 8,
    device: _DeviceOpt = "auto",
    threads: Annotated[Optional[int], typer.Option(help="Torch / OpenMP CPU threads (default: torch's).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache (default: OUT/cache; give disentangle's to embed nothing again).")] = None,
    ir_dir: _IrDirOpt = None,
) -> None:
    """FX retrieval of FX encoders: Recall@1/5/10 and MRR of same-configuration items, per Table 1 case."""
    from mixeval.pipelines.retrieval import RetrievalConfig, run_retrieval

    with user_errors(), contextlib.ExitStack() as stack:
        _limit_threads(stack, threads)  # --protocol iid is refused by RetrievalConfig
        base = RetrievalConfig.quick() if quick else RetrievalConfig()
        ev = _evalset(base.evalset, segments=segments, configs=configs, seconds=seconds, protocol=protocol, split=split,
                      segments_per_song=segments_per_song, single_fx=single_fx)
        cfg = RetrievalConfig(evalset=ev, seeds=seeds if seeds is not None else base.seeds, baselines=tuple(baseline or ()),
                              batch_size=batch_size, device=device)
        res = run_retrieval(list(encoder or ()), data, out, labels=list(label or ()), config=cfg,
                            cache_dir=cache_dir, ir_dir=ir_dir, progress=True)
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(res.markdown)
    t = res.timings
    typer.echo(f"wrote {len(res.files)} files to {out} in {t['total']:.1f} s "
               f"(embedding {t['embed']:.1f} s; cache: {res.cache_hits} hits, {res.cache_misses} misses)")


@app.command("table2")
def table2(
    data: _DataOpt,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="A row LABEL=ENCODER.pt,CLONER.pt (repeatable; ours or the official FXencoder_ps.pt / MixFXcloner_ps.pt).")] = None,
    evaluator: Annotated[Optional[Path], typer.Option(help="FXencoder of the λ·ΔΦ columns (paper: Φp.s.; default: the first model's encoder).")] = None,
    separator: Annotated[Optional[Path], typer.Option(help="torchaudio HDemucs state dict: adds the 'separated stems' row (first model) and its SDR.")] = None,
    items: Annotated[Optional[Path], typer.Option(help="items.json of an earlier run: evaluate exactly those items.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("reports/table2"),
    examples: Annotated[Optional[int], typer.Option(help="Items (each: four stems and their sum; default 50, --quick 4).")] = None,
    seconds: Annotated[Optional[float], typer.Option(help="Segment length of input and reference (default 11.8 s, --quick 3 s).")] = None,
    reference: Annotated[str, typer.Option(help="same-song (default; as Ψ is trained) or other-song references.")] = "same-song",
    seed: Annotated[int, typer.Option(help="Seed of segments and FX configurations.")] = 0,
    split: _SplitOpt = "test",
    quick: Annotated[bool, typer.Option("--quick", help="CPU smoke size: 4 items of 3 s (explicit options win).")] = False,
    dsp_baseline: Annotated[bool, typer.Option("--dsp-baseline/--no-dsp-baseline", help="Add the model-free feature-matching row.")] = True,
    save_audio: Annotated[bool, typer.Option("--save-audio", help="Also write x, ref, gt and every row's y as WAV under OUT/audio/.")] = False,
    batch_size: Annotated[int, typer.Option(help="Items per FX / network call.")] = 4,
    device: _DeviceOpt = "auto",
    bf16: Annotated[bool, typer.Option("--bf16", help="bf16 autocast of the networks on CUDA.")] = False,
    ir_dir: _IrDirOpt = None,
) -> None:
    """Table 2 (paper §3.4.1): how close Ψ's output gets to the reference's mixing style, with model-free rows."""
    from mixeval.pipelines.table2 import Table2Config, parse_model_spec, run_table2
    from mixeval.transfer_set import TransferSetConfig

    with user_errors():
        specs = [parse_model_spec(m) for m in (model or ())]
        base = TransferSetConfig(examples=4, seconds=3.0) if quick else TransferSetConfig()
        ev = TransferSetConfig(examples=examples if examples is not None else base.examples,
                               seconds=seconds if seconds is not None else base.seconds,
                               reference=reference, split=split, seed=seed)
        cfg = Table2Config(evalset=ev, batch_size=batch_size, device=device, dsp_baseline=dsp_baseline, autocast=bf16)
        res = run_table2(data, out, models=specs, evaluator=evaluator, separator=separator, items=items, config=cfg,
                         ir_dir=ir_dir, save_audio=save_audio, progress=True)
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(res.markdown)
    typer.echo(f"wrote {len(res.files)} files to {out} in {res.timings['total']:.1f} s")


@app.command("reproduce")
def reproduce(
    out: Annotated[Path, typer.Argument(help="Output folder (data, features, normalized data, runs, transfer, reports, summary.md/.html).")],
    preset: Annotated[str, typer.Option(help="tiny: ≤ 10 CPU minutes, a smoke run; small: ≤ 45 CPU minutes, the recipe meant to learn; paper: the paper's sizes (GPU).")] = "tiny",
    data: Annotated[Optional[Path], typer.Option(help="Use this dataset (MUSDB18-HQ layout) instead of the synthetic one.")] = None,
    songs: Annotated[Optional[int], typer.Option(help="Synthetic songs (default: the preset's, 12 for tiny, 16 for small).")] = None,
    seconds: Annotated[Optional[float], typer.Option(help="Length of each synthetic song (default: the preset's, 20 s / 30 s).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available).")] = None,
) -> None:
    """The main job: data → FX normalization → Φ∅/Φnorm/Φp.s. → MixFXcloners → transfer → Table 1, retrieval, Table 2 → summary with verdicts."""
    from mixeval.pipelines.reproduce import ReproduceConfig
    from mixeval.pipelines.reproduce import reproduce as run_reproduce

    with user_errors():
        config = ReproduceConfig.for_preset(preset, songs=songs, seconds=seconds, seed=seed)
        paths = run_reproduce(out, config, data=data, device=device, progress=True,
                              log=lambda line: typer.echo(line, err=True))
    summary = paths["summary"]
    typer.echo(summary.read_text(encoding="utf-8"))
    typer.echo(f"summary: {summary} (HTML: {paths['html']})")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except (MixevalError, MixfxError) as err:  # raised outside a command's user_errors block
        typer.echo("error: " + " ".join(str(err).split("\n")), err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
