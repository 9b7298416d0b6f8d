"""The ``mixfx`` command line: thin typer commands over :mod:`mixfx.pipelines`.

Every command turns a :class:`~mixfx.errors.MixfxError` into one line on stderr and exit status 1;
long commands draw tqdm bars on stderr when it is a terminal (``progress=True``, :mod:`mixfx.progress`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from mixfx.errors import MixfxError

app = typer.Typer(
    name="mixfx",
    help="Music mixing style transfer: FX chain, FX normalization, FXencoder / MixFXcloner training and inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Library log lines go to stderr: warnings by default, INFO with -v, DEBUG with -vv, errors only with -q.

    The same convention as ``mixeval``, so a failing command prints exactly one line (its error).
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    for noisy in ("numba", "matplotlib", "PIL", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def _main(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors."),
) -> None:
    setup_logging(verbose, quiet)


def _run(fn, *args, **kwargs):
    """Call ``fn``; a :class:`MixfxError` or an :class:`OSError` becomes one stderr line and exit status 1."""
    from mixfx.io.paths import os_error_message

    try:
        return fn(*args, **kwargs)
    except MixfxError as err:
        typer.echo("error: " + " ".join(str(err).split("\n")), err=True)
        raise typer.Exit(1) from None
    except OSError as err:
        typer.echo(f"error: {os_error_message(err)}", err=True)
        raise typer.Exit(1) from None


@app.command("synth-dataset")
def synth_dataset(
    out: Path = typer.Argument(..., help="Output folder (MUSDB18-HQ layout: train/, test/, validation.txt)."),
    songs: int = typer.Option(20, "--songs", "-n", help="Number of songs."),
    seconds: float = typer.Option(30.0, "--seconds", "-s", help="Length of each song in seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty folder."),
) -> None:
    """Render the built-in synthetic multitrack dataset (General-MIDI arrangements, no download)."""
    from mixfx.data.synth import make_synth_dataset

    path = _run(make_synth_dataset, out, songs=songs, seconds=seconds, seed=seed, overwrite=overwrite, progress=True)
    typer.echo(str(path))


@app.command("fx-features")
def fx_features(
    dataset: Path = typer.Argument(..., help="Dataset folder (MUSDB18-HQ layout)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz of per-instrument average features."),
    split: str = typer.Option("train", help="Split to average over."),
) -> None:
    """Compute per-instrument average FX features (EQ, dynamics, imaging, loudness) for FX normalization."""
    from mixfx.pipelines.fx_normalize import compute_features

    path = _run(compute_features, dataset, out, split=split, progress=True)
    typer.echo(str(path))


@app.command("fx-normalize")
def fx_normalize(
    dataset: Path = typer.Argument(..., help="Dataset folder (MUSDB18-HQ layout)."),
    features: Path = typer.Option(..., "--features", "-f", help="Features .npz from fx-features, or the official .npy."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset folder (same layout)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the stochastic imager step (Haas)."),
) -> None:
    """FX-normalize every stem (EQ, DRC, imaging, panning, loudness) into a new dataset."""
    from mixfx.pipelines.fx_normalize import normalize_dataset

    path = _run(normalize_dataset, dataset, features, out, seed=seed, progress=True)
    typer.echo(str(path))


@app.command("manipulate")
def manipulate(
    inputs: list[Path] = typer.Argument(..., help="Audio files to manipulate."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (audio, parameters.csv, factors.csv)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the FX configurations."),
    variants: int = typer.Option(1, "--variants", "-k", help="Configurations per input."),
    stem: str = typer.Option("mixture", "--stem", help="Stem kind of the inputs: drums, bass, other, vocals, mixture."),
    single_fx: Optional[str] = typer.Option(None, "--single-fx", help="Apply only this effect: eq, compressor, pan, imager, reverb, gain."),
    same_config: bool = typer.Option(False, "--same-config", help="Apply configuration k to every input (positive pairs)."),
    ir_dir: Optional[Path] = typer.Option(None, "--ir-dir", help="Folder of impulse responses (default: built-in synthetic IRs)."),
) -> None:
    """Apply random FXmanipulator configurations to audio files and write their parameters."""
    from mixfx.pipelines.manipulate import manipulate_files

    path = _run(manipulate_files, inputs, out, seed=seed, variants=variants, stem=stem, single_fx=single_fx,
                same_config=same_config, ir_dir=ir_dir)
    typer.echo(str(path))


def _preset(kind: str, preset: str, overrides: dict):
    from mixfx.train.config import ClonerTrainConfig, EncoderTrainConfig

    cls = EncoderTrainConfig if kind == "encoder" else ClonerTrainConfig
    if preset not in ("paper", "small", "tiny"):
        typer.echo(f"error: --preset: unknown preset {preset!r}; expected 'paper', 'small' or 'tiny'", err=True)
        raise typer.Exit(1)
    return _run(getattr(cls, preset), **{k: v for k, v in overrides.items() if v is not None})


@app.command("train-encoder")
def train_encoder_cmd(
    data: Path = typer.Argument(..., help="Dataset (MUSDB18-HQ layout; FX-normalized for --variant norm/ps)."),
    run: Path = typer.Option(..., "--run", "-r", help="Run folder (config, metrics.csv, tensorboard/, checkpoints/)."),
    preset: str = typer.Option("tiny", help="paper (batch 256, 64K steps), small (the CPU recipe of mixeval reproduce --preset small) or tiny (CPU minutes)."),
    variant: str = typer.Option("ps", help="none = Φ∅ (raw stems), norm = Φnorm, ps = Φp.s. (probability scheduling)."),
    steps: Optional[int] = typer.Option(None, help="Override the number of optimizer steps."),
    contents: Optional[int] = typer.Option(None, help="Override content pairs per step (batch = 2 × contents)."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    workers: Optional[int] = typer.Option(None, help="DataLoader worker processes."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run from its last checkpoint."),
    ir_dir: Optional[Path] = typer.Option(None, "--ir-dir", help="Impulse responses (default: built-in synthetic IRs)."),
    allow_unnormalized: bool = typer.Option(False, "--allow-unnormalized", help="Train norm/ps on a dataset without fx_normalization.json (not FX-normalized)."),
) -> None:
    """Train an FXencoder with the contrastive objective (runs under torchrun for multi-GPU)."""
    from mixfx.pipelines.train_encoder import train_encoder

    config = _preset("encoder", preset, dict(variant=variant, steps=steps, contents=contents, seed=seed, workers=workers))
    path = _run(train_encoder, data, run, config, resume=resume, device=device, ir_dir=ir_dir,
                allow_unnormalized=allow_unnormalized, progress=True)
    typer.echo(str(path))


@app.command("train-cloner")
def train_cloner_cmd(
    data: Path = typer.Argument(..., help="FX-normalized dataset (MUSDB18-HQ layout)."),
    encoder: Path = typer.Option(..., "--encoder", "-e", help="Trained FXencoder checkpoint (ours or the official FXencoder_ps.pt)."),
    run: Path = typer.Option(..., "--run", "-r", help="Run folder."),
    preset: str = typer.Option("tiny", help="paper (batch 8, 11.8 s), small (the CPU recipe) or tiny (CPU minutes)."),
    steps: Optional[int] = typer.Option(None, help="Override the number of optimizer steps."),
    batch: Optional[int] = typer.Option(None, help="Override the batch size."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    workers: Optional[int] = typer.Option(None, help="DataLoader worker processes."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run from its last checkpoint."),
    ir_dir: Optional[Path] = typer.Option(None, "--ir-dir", help="Impulse responses (default: built-in synthetic IRs)."),
    level_weight: Optional[float] = typer.Option(None, "--level-weight", help="Add this weight × |RMS level error| (dB) to the spectral loss (not in the paper; 0 = the paper's loss)."),
) -> None:
    """Train a MixFXcloner conditioned on a frozen FXencoder (multi-scale spectral loss on L/R/M/S)."""
    from mixfx.pipelines.train_cloner import train_cloner

    config = _preset("cloner", preset, dict(steps=steps, batch=batch, seed=seed, workers=workers, level_weight=level_weight))
    path = _run(train_cloner, data, encoder, run, config, resume=resume, device=device, ir_dir=ir_dir, progress=True)
    typer.echo(str(path))


@app.command("transfer")
def transfer_cmd(
    input: Path = typer.Option(..., "--input", "-i", help="Song (stem folder or mixture file) or a folder of songs."),
    reference: Path = typer.Option(..., "--reference", "-r", help="Reference song (stems or mixture), or a folder of songs named like the inputs."),
    out: Path = typer.Option(..., "--out", "-o", help="Output root: OUT/<song>/{mixture,drums,bass,other,vocals}.wav."),
    encoder: Path = typer.Option(..., "--encoder", "-e", help="FXencoder checkpoint (ours or the official FXencoder_ps.pt)."),
    cloner: Path = typer.Option(..., "--cloner", "-c", help="MixFXcloner checkpoint (ours or the official MixFXcloner_ps.pt)."),
    features: Optional[Path] = typer.Option(None, "--features", "-f", help="FX-normalization features (.npz or the official .npy) for the input stems."),
    reference_b: Optional[Path] = typer.Option(None, "--reference-b", help="Second reference to interpolate towards."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Interpolation weight: 0 = --reference, 1 = --reference-b (default 0.5)."),
    separator_weights: Optional[Path] = typer.Option(None, "--separator-weights", help="torchaudio HDemucs state_dict, needed for mixture inputs."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
    segment: int = typer.Option(2**19, help="Cloner window in samples for cross-faded windows (official 2^19 ≈ 11.9 s)."),
    overlap: Optional[float] = typer.Option(None, help="Cross-fade windows with this overlap in [0, 1) (default: one exact tiled pass)."),
    batch_size: int = typer.Option(1, "--batch-size", help="Windows per network call, or stems per tiled pass."),
    max_memory: int = typer.Option(2**30, "--max-memory", help="Byte budget of one tiled cloner pass (sets its tile length)."),
    bf16: bool = typer.Option(False, "--bf16", help="Run the cloner on bfloat16 weights: faster on bf16 hardware (AMX / AVX-512 BF16 CPUs, GPUs), not exact (errors about 5e-3)."),
    reference_segments: int = typer.Option(8, "--reference-segments", help="Most encoder segments (2^19 samples each) per reference stem: longer references are represented by this many evenly spaced segments; 0 = all segments."),
    peak_db: Optional[float] = typer.Option(None, "--peak-db", help="Scale outputs so the mixture peaks at this level (dBFS)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo songs whose output folder exists."),
) -> None:
    """Mixing style transfer: convert each input song's stems to the reference's mixing style."""
    from mixfx.pipelines.transfer import TransferConfig, transfer

    if reference_segments < 0:
        typer.echo(f"error: --reference-segments must be ≥ 1 (or 0 for all segments), got {reference_segments}", err=True)
        raise typer.Exit(1)
    config = _run(TransferConfig, segment=segment, overlap=overlap, batch_size=batch_size, max_memory=max_memory,
                  peak_db=peak_db, reference_segments=reference_segments or None, precision="bf16" if bf16 else "fp32")
    results = _run(transfer, input, reference, out, encoder=encoder, cloner=cloner, reference_b=reference_b, alpha=alpha,
                   features=features, separator_weights=separator_weights, device=device, config=config,
                   overwrite=overwrite, progress=True)
    for r in results:
        note = "skipped (exists)" if r.skipped else f"{r.seconds:.1f} s, peak {r.peak_db:+.1f} dBFS" + (" — CLIPS" if r.clipped else "")
        typer.echo(f"{r.folder}: {note}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
