"""``mixfx transfer``: mixing style transfer of whole songs (Koo et al. 2023, §2.3 and the official inference).

For every input song: get its four stems (stem files, or Hybrid Demucs separation of a mixture),
FX-normalize them (when a features file is given; official order loudness, EQ, DRC, imaging +
panning, loudness; then clamped to [−1, 1]), convert each stem with the MixFXcloner conditioned on
the FXencoder embedding of the same stem of the reference, and write the converted stems and their
sum. Reference stems are not normalized, only clamped (as in the official code).

The tensor work is :class:`mixfx.models.style_transfer.StyleTransfer`, finding songs in
:mod:`mixfx.pipelines.transfer_songs`, separation in :mod:`mixfx.models.separation`.

Differences from the official inference, on purpose:

* The cloner runs as one pass over the whole song, streamed layer by layer in tiles that carry
  only each layer's own halo (:func:`mixfx.models.tcn_inference.cloner_forward_tiled`), so there
  are no seams, nothing is recomputed and memory stays within ``max_memory``. With ``overlap`` set
  explicitly, ``segment``-sample windows are cross-faded instead
  (:func:`mixfx.models.apply.apply_in_windows`). The official code joins
  non-overlapping zero-padded chunks, which clicks at every join.
* The reference embedding is the segment average of :func:`mixfx.models.apply.embed_in_segments`
  (no zero-padded last chunk), over at most ``reference_segments`` segments (default 8: references
  up to 8 × 2^19 samples ≈ 95 s are covered whole, longer ones by 8 evenly spaced segments).
* Batching: the four stems of a song go through Φ in one batch per segment offset and through Ψ as
  rows of one tiled pass; songs of the same length (up to ``songs_per_batch``) are converted
  together in one pass.
* Input stems that are silent (peak at or below ``silence_db``) give silent outputs instead of
  whatever the network makes of silence.

Interpolation: ``e = (1 − α)·e_A + α·e_B`` per stem, so α = 0 is reference A alone and α = 1 is B.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.errors import MixfxError
from mixfx.io.atomic import atomic_dir
from mixfx.io.audio import audio_info, save_audio
from mixfx.io.paths import check_output_dir
from mixfx.models.loading import load_models, resolve_device
from mixfx.models.style_transfer import (INFERENCE_EFFECTS, REFERENCE_SEGMENTS, StyleTransfer, interpolate_embeddings,
                                         mix_stems)
from mixfx.pipelines.transfer_songs import SongSource, as_song, list_songs, load_stems, match_references
from mixfx.progress import Progress, ProgressFn, progress_reporter

log = logging.getLogger(__name__)

SUBTYPES = ("FLOAT", "PCM_16", "PCM_24", "PCM_32")


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Settings of :func:`transfer`.

    Attributes:
        segment: cloner window in samples for cross-faded windows (official 2^19 ≈ 11.9 s).
        overlap: ``None``: the exact tiled pass (see module docstring); a fraction in [0, 1):
            cross-faded windows with that overlap.
        reference_segment: piece length for the reference embedding (official 2^19).
        reference_segments: most encoder segments per reference stem (``None``: all); see
            :func:`mixfx.models.apply.reference_pieces`.
        songs_per_batch: songs of the same length converted together in one Ψ batch.
        batch_size: windows per network call (cross-faded) and encoder segments per call.
        max_memory: byte budget of one tiled pass; sets its tile length.
        seed: seed of the Haas step of FX normalization (per song and stem).
        min_seconds: shortest accepted input / reference.
        peak_db: scale each output (mixture and stems alike) so the mixture peaks at this level
            (dBFS); ``None`` keeps the network's levels.
        subtype: WAV sample format; ``FLOAT`` keeps levels above 0 dBFS, ``PCM_*`` clip there.
        silence_db: input stems peaking at or below this level are output as silence; ``None``
            converts every stem.
        effects: FX normalization steps of the input stems.
        separation_seconds, separation_overlap: Hybrid Demucs windowing.
        context_windows: the earlier exact Ψ path (``segment``-sample windows with the cloner's
            context on each side) instead of the tiled pass, for comparison; same output.
        precision: ``"fp32"`` (exact) or ``"bf16"`` (Ψ on bfloat16 weights; faster on bf16
            hardware, errors ≈ 5e-3; see :class:`~mixfx.models.style_transfer.StyleTransfer`).
    """

    segment: int = 2**19
    overlap: float | None = None
    reference_segment: int = 2**19
    reference_segments: int | None = REFERENCE_SEGMENTS
    songs_per_batch: int = 4
    batch_size: int = 1
    max_memory: int = 2**30
    seed: int = 0
    min_seconds: float = 1.0
    peak_db: float | None = None
    subtype: str = "FLOAT"
    silence_db: float | None = -60.0
    effects: tuple[str, ...] = INFERENCE_EFFECTS
    separation_seconds: float = 10.0
    separation_overlap: float = 0.25
    context_windows: bool = False
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.segment < 1 or self.reference_segment < 1 or self.batch_size < 1:
            raise MixfxError(f"transfer: segment, reference_segment and batch_size must be ≥ 1, got "
                             f"{self.segment}, {self.reference_segment}, {self.batch_size}")
        if self.reference_segments is not None and (isinstance(self.reference_segments, bool) or
                                                    int(self.reference_segments) != self.reference_segments or
                                                    self.reference_segments < 1):
            raise MixfxError(f"transfer: reference_segments must be an integer ≥ 1 (or None for all), got "
                             f"{self.reference_segments!r}")
        if not isinstance(self.songs_per_batch, int) or self.songs_per_batch < 1:
            raise MixfxError(f"transfer: songs_per_batch must be an integer ≥ 1, got {self.songs_per_batch!r}")
        if not self.max_memory >= 1:
            raise MixfxError(f"transfer: max_memory must be a positive number of bytes, got {self.max_memory}")
        if self.overlap is not None and not 0 <= self.overlap < 1:
            raise MixfxError(f"transfer: overlap must be in [0, 1) or None, got {self.overlap}")
        if self.precision not in ("fp32", "bf16"):
            raise MixfxError(f"transfer: precision must be fp32 or bf16, got {self.precision!r}")
        if self.subtype not in SUBTYPES:
            raise MixfxError(f"transfer: subtype must be one of {', '.join(SUBTYPES)}, got {self.subtype!r}")
        if self.peak_db is not None and not (math.isfinite(self.peak_db) and self.peak_db <= 0):
            raise MixfxError(f"transfer: peak_db must be a level ≤ 0 dBFS, got {self.peak_db}")
        object.__setattr__(self, "effects", tuple(self.effects))


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """What :func:`transfer` did for one song."""

    song: str
    folder: Path
    seconds: float
    peak_db: float
    skipped: bool = False

    @property
    def clipped(self) -> bool:
        return self.peak_db > 0.0


# ----------------------------------------------------------------------------------------- whole pipeline


def transfer(
    input: str | os.PathLike,
    reference: str | os.PathLike,
    out: str | os.PathLike,
    *,
    encoder: str | os.PathLike,
    cloner: str | os.PathLike,
    reference_b: str | os.PathLike | None = None,
    alpha: float | None = None,
    features: str | os.PathLike | None = None,
    separator_weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    config: TransferConfig = TransferConfig(),
    overwrite: bool = False,
    progress: Progress = None,
) -> list[TransferResult]:
    """Transfer the mixing style of ``reference`` to every song of ``input``; write ``out/<song>/``.

    Each output folder holds ``mixture.wav`` (sum of the converted stems), ``drums.wav``,
    ``bass.wav``, ``other.wav``, ``vocals.wav`` (44.1 kHz stereo) and ``transfer.json`` (settings),
    built in a temporary folder and renamed, so a failed run leaves nothing half-written. Songs whose
    folder exists are skipped unless ``overwrite``.

    Args:
        input: a song (stem folder or mixture file / folder with ``mixture.wav``) or a folder of songs.
        reference: one song used for every input, or a folder of songs named like the inputs.
        out: output root.
        encoder, cloner: checkpoints (this project's or the official ``FXencoder_ps.pt`` /
            ``MixFXcloner_ps.pt``).
        reference_b: second reference (same forms as ``reference``) to interpolate towards.
        alpha: interpolation weight in [0, 1]: ``e = (1 − α)·e_A + α·e_B`` (0 = ``reference``,
            1 = ``reference_b``); default 0.5 with ``reference_b``.
        features: FX normalization features (``.npz`` from ``mixfx fx-features`` or the official
            ``.npy``); without it the input stems are used as they are.
        separator_weights: torchaudio HDemucs state dict, needed when any input or reference is a mixture.
        device: ``cpu`` / ``cuda`` (default: CUDA when available).
        config: windowing, output format and the rest (:class:`TransferConfig`).
        overwrite: redo songs whose output folder exists.
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, "transfer")`` in milliseconds of audio as it is processed (separating an
            input mixture counts once more).

    Returns:
        One :class:`TransferResult` per input song.

    Raises:
        MixfxError: any bad path, checkpoint, audio or setting (one line naming it).
    """
    if alpha is not None and reference_b is None:
        raise MixfxError("alpha needs a second reference (reference_b)")
    alpha = 0.5 if reference_b is not None and alpha is None else alpha
    if alpha is not None:
        interpolate_embeddings({}, {}, alpha)  # validates the range
    songs = list_songs(input)
    out = check_output_dir(out, option="out", inputs=[input] if as_song(input) is None else [])
    refs = {"A": match_references(reference, songs)}
    if reference_b is not None:
        refs["B"] = match_references(reference_b, songs)
    mixtures = [s.mixture for s in songs if s.stems is None]
    mixtures += [r.mixture for table in refs.values() for r in table.values() if r.stems is None]
    if mixtures and separator_weights is None:
        raise MixfxError(f"{mixtures[0]}: is a mixture: pass --separator-weights PATH (a torchaudio HDemucs "
                         f"state_dict) or give a stem folder ({', '.join(STEMS)} .wav)")
    fx = None
    if features is not None:
        from mixfx.fxnorm.targets import load_features

        fx = load_features(features)
        lacking = [s for s in STEMS if s not in fx.stems]
        if lacking:
            raise MixfxError(f"{features}: features lack stem(s) {', '.join(lacking)}")
    if separator_weights is not None and mixtures and not Path(separator_weights).is_file():
        raise MixfxError(f"{separator_weights}: separator weights not found")
    for what, path in (("encoder", encoder), ("cloner", cloner)):
        if not Path(path).is_file():
            raise MixfxError(f"{path}: {what} checkpoint not found")
    if features is None:
        log.warning("no FX normalization features: input stems go to the cloner as they are "
                    "(it was trained on FX-normalized stems; pass features unless the input is normalized)")
    todo = [s for s in songs if overwrite or not (out / s.name).exists()]
    for s in songs:
        if s not in todo:
            log.warning("%s: exists, skipped (pass overwrite to redo it)", out / s.name)
    if not todo:
        return [TransferResult(s.name, out / s.name, s.seconds(), float("nan"), skipped=True) for s in songs]
    device = resolve_device(device)
    enc, psi = load_models(encoder, cloner, device=device)
    model = StyleTransfer(enc, psi, fx, segment=config.segment, overlap=config.overlap,
                          reference_segment=config.reference_segment, reference_segments=config.reference_segments,
                          batch_size=config.batch_size,
                          max_memory=config.max_memory, silence_db=config.silence_db, effects=config.effects,
                          context_windows=config.context_windows, precision=config.precision, seed=config.seed,
                          device=device)
    separator = None
    if mixtures:
        from mixfx.models.separation import load_separator

        separator = load_separator(separator_weights, device=device, segment_seconds=config.separation_seconds,
                                   overlap=config.separation_overlap, batch_size=config.batch_size)

    seconds = {s.name: s.seconds() for s in todo}
    total_ms = round(1000 * sum(seconds[s.name] * (1 if s.stems is not None else 2) for s in todo))
    report = progress_reporter(progress, unit="ms")
    finished = [0.0]  # audio seconds processed so far
    cache: dict[Path, dict[str, torch.Tensor]] = {}

    def embedding(ref: SongSource) -> dict[str, torch.Tensor]:
        if ref.path not in cache:
            stems = load_stems(ref, separator=separator, min_seconds=config.min_seconds)
            cache[ref.path] = model.embed_stems(stems)
        return cache[ref.path]

    def ticker(amount: float) -> ProgressFn:
        """A step's own progress ``(done, n, label)`` → this run's, the step being ``amount`` s of audio."""
        base = finished[0]

        def tick(done: int, n: int, label: str) -> None:
            finished[0] = base + amount * done / n
            report(min(round(1000 * finished[0]), total_ms), total_ms, "transfer")
        return tick

    done: dict[str, TransferResult] = {}
    try:
        for group in song_batches(todo, config.songs_per_batch):
            batch = []
            for song in group:
                e = embedding(refs["A"][song.name])
                if "B" in refs:
                    e = interpolate_embeddings(e, embedding(refs["B"][song.name]), alpha)
                stems = load_stems(song, separator=separator, min_seconds=config.min_seconds,
                                   progress=ticker(seconds[song.name]))
                batch.append((stems, e, song.name))
            if len({next(iter(stems.values())).shape[-1] for stems, _, _ in batch}) > 1:  # e.g. after resampling
                converted = [model.convert_stems(*item[:2], song=item[2], progress=ticker(seconds[item[2]]))
                             for item in batch]
            else:
                converted = model.convert_songs(batch, progress=ticker(sum(seconds[s.name] for s in group)))
            for song, stems in zip(group, converted):
                done[song.name] = _write_song(out / song.name, stems, song, config, record={
                    "input": str(song.path), "reference": str(refs["A"][song.name].path),
                    "reference_b": str(refs["B"][song.name].path) if "B" in refs else None, "alpha": alpha,
                    "encoder": str(encoder), "cloner": str(cloner), "features": str(features) if features else None,
                    "separator_weights": str(separator_weights) if separator_weights and song.stems is None else None,
                    "config": dataclasses.asdict(config)})
    finally:
        report.close()
    return [done.get(s.name) or TransferResult(s.name, out / s.name, s.seconds(), float("nan"), skipped=True)
            for s in songs]


def song_batches(songs: list[SongSource], size: int) -> list[list[SongSource]]:
    """Songs grouped for one Ψ batch: same length and rate (from the file headers), at most ``size`` each,
    in input order of their first song."""
    groups: dict[tuple[int, int], list[list[SongSource]]] = {}
    order: list[list[SongSource]] = []
    for song in songs:
        frames, rate, _ = audio_info(song.mixture if song.stems is None else next(iter(song.stems.values())))
        runs = groups.setdefault((frames, rate), [])
        if not runs or len(runs[-1]) >= size:
            runs.append([])
            order.append(runs[-1])
        runs[-1].append(song)
    return order


def _write_song(folder: Path, stems: dict[str, torch.Tensor], song: SongSource, config: TransferConfig,
                record: dict[str, Any]) -> TransferResult:
    mixture = mix_stems(stems)
    peak = float(mixture.abs().max())
    peak_db = 20 * math.log10(max(peak, 1e-12))
    if config.peak_db is not None and peak > 0:
        gain = 10 ** (config.peak_db / 20) / peak
        stems = {s: x * gain for s, x in stems.items()}
        mixture = mixture * gain
        log.info("%s: mixture peak %.2f dBFS scaled to %.2f dBFS", song.name, peak_db, config.peak_db)
    elif peak_db > 0:
        log.warning("%s: mixture peaks at %+.2f dBFS%s; pass peak_db (--peak-db) to scale it", song.name, peak_db,
                    " and is clipped in the PCM file" if config.subtype != "FLOAT" else " (kept in the float WAV)")
    with atomic_dir(folder) as tmp:
        save_audio(tmp / "mixture.wav", mixture, SAMPLE_RATE, subtype=config.subtype)
        for stem, x in stems.items():
            save_audio(tmp / f"{stem}.wav", x, SAMPLE_RATE, subtype=config.subtype)
        record = {**record, "mixture_peak_db": round(peak_db, 3)}
        (tmp / "transfer.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log.info("%s: wrote %s", song.name, folder)
    return TransferResult(song.name, folder, mixture.shape[-1] / SAMPLE_RATE, peak_db)
