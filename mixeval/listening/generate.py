"""Plan the questions of a listening test and produce its loudness-matched, blinded media.

Pre-rendered layout (``spec.prerendered``)::

    <prerendered>/
      input/<song>/{drums,bass,other,vocals}.wav   [mixture.wav]   the input track x
      reference/<song>/...                          same names      the reference track ref
      <condition>/<song>/...                        same names      each system's output for x given ref

Each song folder is one test item; all its files are time-aligned. A multitrack question uses
``mixture.<ext>`` when present, else the sum of the four stems; a single-stem question uses
``<stem>.<ext>`` (any of :data:`mixfx.io.audio.AUDIO_SUFFIXES`: .wav .flac .ogg .mp3 .aiff). Conditions with a built-in source need no
folder; ``checkpoint`` conditions are rendered by a :class:`Renderer` (per stem; multitrack
outputs are the sum of the rendered stems, as in the paper's multitrack conversion).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mixeval.errors import MixevalError
from mixeval.listening import media
from mixeval.listening.spec import ConditionSpec, ListeningTestSpec
from mixeval.listening.waet import WaetElement, WaetPage
from mixfx import STEMS
from mixfx.io.audio import AUDIO_SUFFIX_TEXT, AUDIO_SUFFIXES, audio_info, load_audio
from mixfx.progress import Progress, progress_reporter

logger = logging.getLogger(__name__)

__all__ = ["GeneratedTest", "Question", "Renderer", "StimulusSource", "generate_media", "plan_questions"]

_TOKEN_FIRST = "abcdefghjkmnpqrstuvwxyz"
_TOKEN_REST = _TOKEN_FIRST + "23456789"
MIN_SECONDS = 1.0
OUTSIDE_LABELS = ("Reference mix", "Input track")  # the labels participants see on the two outside references


class Renderer(Protocol):
    """Renders one stem of a system's output (plug-in point for checkpoint-based systems).

    Called as ``render(condition, input_audio, reference_audio, stem)`` with ``(2, samples)``
    float32 tensors at ``spec.sample_rate`` (the question's segment) and ``stem`` one of
    ``drums, bass, other, vocals``; returns ``(2, samples)`` audio (tensor or array).
    """

    def __call__(self, condition: ConditionSpec, input_audio: torch.Tensor, reference_audio: torch.Tensor, stem: str): ...


@dataclass(frozen=True)
class Question:
    """One test page: a song and either the mixture (multitrack) or one stem."""

    page_id: str
    question_type: str  # multitrack | single_stem
    song: str
    stem: str  # "mixture" or a stem name

    @property
    def title(self) -> str:
        return "Full mix (multitrack)" if self.stem == "mixture" else f"Single stem: {self.stem}"


@dataclass
class GeneratedTest:
    """Pages for the XML and manifest rows, after the media were written.

    Attributes:
        level_lufs: the one loudness of every file (the target, or lower: see :func:`generate_media`).
        peak_limited: the files that would have exceeded the true-peak ceiling at the target, i.e.
            why ``level_lufs`` is below it (empty when it is not).
    """

    pages: list[WaetPage]
    manifest: list[dict]
    questions: list[Question]
    clipped_files: list[str]
    level_lufs: float = float("nan")
    peak_limited: list[str] = field(default_factory=list)


class StimulusSource:
    """Loads question segments from the pre-rendered layout and renders built-in/checkpoint conditions."""

    def __init__(self, spec: ListeningTestSpec, renderer: Renderer | None = None):
        self.spec = spec
        self.renderer = renderer
        self.root = Path(spec.prerendered)
        self._cache: dict[tuple[str, str, str], tuple[np.ndarray, list[str]]] = {}
        for sub in ("input", "reference"):
            if not (self.root / sub).is_dir():
                raise MixevalError(
                    f"{self.root}: missing folder {sub}/ (layout: <prerendered>/{{input,reference,<condition>}}/<song>/<stem> audio file, {AUDIO_SUFFIX_TEXT})"
                )
        for c in spec.conditions:
            if c.source == "prerendered" and not (self.root / (c.folder or c.name)).is_dir():
                raise MixevalError(f"condition {c.name!r}: folder {self.root / (c.folder or c.name)} not found")
            if c.source == "checkpoint" and renderer is None:
                raise MixevalError(
                    f"condition {c.name!r}: source 'checkpoint' needs a renderer (the CLI passes mixeval's CheckpointRenderer); "
                    f"pre-render its outputs into {self.root / c.name}/<song>/<stem>.wav (or {AUDIO_SUFFIX_TEXT}) and use source 'prerendered'"
                )

    def songs(self) -> list[str]:
        """Songs to draw from: ``spec.songs`` or every folder in ``input/``, sorted."""
        found = sorted(p.name for p in (self.root / "input").iterdir() if p.is_dir() and not p.name.startswith("."))
        if self.spec.songs:
            missing = [s for s in self.spec.songs if s not in found]
            if missing:
                raise MixevalError(f"{self.root / 'input'}: song folder(s) {missing} not found")
            return list(self.spec.songs)
        if not found:
            raise MixevalError(f"{self.root / 'input'}: no song folders")
        return found

    def start_seconds(self, song: str) -> float:
        return float(self.spec.segment_starts.get(song, self.spec.segment_start_seconds))

    def _file(self, folder: str, song: str, name: str) -> Path | None:
        for ext in AUDIO_SUFFIXES:
            p = self.root / folder / song / f"{name}{ext}"
            if p.is_file():
                return p
        return None

    def _read(self, path: Path, song: str) -> np.ndarray:
        sr = self.spec.sample_rate
        total, file_rate, _ = audio_info(path)
        start = int(round(self.start_seconds(song) * file_rate))
        if start >= total:
            raise MixevalError(f"{path}: {total / file_rate:.2f} s long, shorter than the segment start {self.start_seconds(song)} s")
        frames = int(np.ceil(self.spec.segment_seconds * file_rate)) + 1
        x = load_audio(path, sample_rate=sr, start=start, frames=frames).numpy().astype(np.float64)
        return x[:, : int(round(self.spec.segment_seconds * sr))]

    def segment(self, folder: str, song: str, stem: str) -> tuple[np.ndarray, list[str]]:
        """The question segment ``(2, samples)`` of ``<folder>/<song>/<stem>`` (mixture: file or stem sum)."""
        key = (folder, song, stem)
        if key not in self._cache:
            path = self._file(folder, song, stem)
            if path is not None:
                self._cache[key] = (self._read(path, song), [str(path)])
            elif stem == "mixture":
                parts = [self.segment(folder, song, s) for s in STEMS]
                n = min(p[0].shape[-1] for p in parts)
                self._cache[key] = (sum(p[0][:, :n] for p in parts), [f for p in parts for f in p[1]])
            else:
                raise MixevalError(f"{self.root / folder / song}: no {stem} file ({AUDIO_SUFFIX_TEXT})")
        return self._cache[key]

    def condition(self, cond: ConditionSpec, song: str, stem: str) -> tuple[np.ndarray, list[str]]:
        """The output of ``cond`` for one question."""
        if cond.source == "prerendered":
            return self.segment(cond.folder or cond.name, song, stem)
        if cond.source == "input":
            return self.segment("input", song, stem)
        if cond.source == "reference":
            return self.segment("reference", song, stem)
        if cond.source == "anchor":
            x, src = self.segment("input", song, stem)
            return media.anchor(x, self.spec.sample_rate, cutoff_hz=self.spec.anchor_cutoff_hz), src
        stems = STEMS if stem == "mixture" else (stem,)
        outs, sources = [], []
        for s in stems:
            x, sx = self.segment("input", song, s)
            r, sr_ = self.segment("reference", song, s)
            y = self.renderer(cond, torch.from_numpy(x).float(), torch.from_numpy(r).float(), s)
            y = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
            if y.ndim != 2 or y.shape[0] != 2:
                raise MixevalError(f"condition {cond.name!r}: renderer returned shape {y.shape}, expected (2, samples)")
            outs.append(y)
            sources += sx + sr_
        n = min(o.shape[-1] for o in outs)
        return sum(o[:, :n] for o in outs), sources

    def audible(self, folder: str, song: str, stem: str) -> bool:
        """True when the segment has a block above the −70 LUFS gate."""
        x, _ = self.segment(folder, song, stem)
        return media.has_audible_block(x, self.spec.sample_rate)


def plan_questions(spec: ListeningTestSpec, source: StimulusSource, rng: np.random.Generator) -> list[Question]:
    """Choose songs: ``multitrack_questions`` distinct songs for the mixture, ``stem_questions``
    distinct songs per stem, in random order, skipping songs whose input or reference segment is silent.

    Raises:
        MixevalError: not enough songs with audible material for a question type.
    """
    songs = source.songs()
    plan: list[tuple[str, str, str]] = []
    wanted = [("multitrack", "mixture", spec.multitrack_questions)] + [("single_stem", s, spec.stem_questions) for s in spec.stems]
    for qtype, stem, count in wanted:
        if count == 0:
            continue
        chosen = []
        for i in rng.permutation(len(songs)):
            song = songs[int(i)]
            if source.audible("input", song, stem) and source.audible("reference", song, stem):
                chosen.append(song)
            else:
                logger.info("%s/%s: input or reference segment is silent; not used", song, stem)
            if len(chosen) == count:
                break
        if len(chosen) < count:
            raise MixevalError(
                f"need {count} songs with audible {stem} for {qtype} questions, found {len(chosen)} among {len(songs)} "
                f"(segment {spec.segment_start_seconds} s + {spec.segment_seconds} s)"
            )
        plan += [(qtype, song, stem) for song in chosen]
    return [Question(f"q{i + 1:02d}", qtype, song, stem) for i, (qtype, song, stem) in enumerate(plan)]


def _tokens(rng: np.random.Generator, n: int, length: int = 8) -> list[str]:
    out: list[str] = []
    seen = set()
    while len(out) < n:
        tok = _TOKEN_FIRST[rng.integers(len(_TOKEN_FIRST))] + "".join(
            _TOKEN_REST[i] for i in rng.integers(len(_TOKEN_REST), size=length - 1)
        )
        if tok not in seen:
            seen.add(tok)
            out.append(tok)
    return out


def generate_media(
    spec: ListeningTestSpec,
    media_dir: Path,
    *,
    renderer: Renderer | None = None,
    progress: Progress = None,
) -> GeneratedTest:
    """Render, trim, fade, loudness-match and write every file of the test into ``media_dir``.

    Files get random names (``<token>.<spec.media_format>``); element ids are ``<page>-<token>``
    for rated stimuli and ``<page>-reference`` / ``<page>-input`` for the two outside references.
    Randomness (song choice, tokens, element order) comes from ``spec.seed`` only.

    **One level for the whole test** (participants are told not to touch the volume): every
    file of every page is scaled to the same integrated loudness, ``spec.target_lufs``, unless
    some file would then peak above ``spec.true_peak_dbtp`` (4x-oversampled true peak); then
    the whole test is lowered by the largest excess (:func:`media.common_level`), so all files
    stay at one level and under the ceiling. The files that forced it are listed in
    :attr:`GeneratedTest.peak_limited`, their excess in the manifest's ``peak_excess_db``.
    All segments are measured before any is written, so they are held in memory (float32).

    Args:
        spec: validated spec.
        media_dir: folder for the media files (created).
        renderer: renders ``checkpoint`` conditions.
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, "questions: SONG, STEM")`` after each question is measured.

    Returns:
        :class:`GeneratedTest` with pages (urls relative to ``media_dir``) and manifest rows
        (``file`` relative to ``media_dir``'s grandparent, i.e. ``media/<name>/<token>.<ext>``).
    """
    plan_rng, token_rng, order_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(3))
    source = StimulusSource(spec, renderer)
    questions = plan_questions(spec, source, plan_rng)
    media_dir.mkdir(parents=True, exist_ok=True)
    sr = spec.sample_rate
    n_files = len(spec.conditions) + 2
    tokens = iter(_tokens(token_rng, n_files * len(questions)))
    report = progress_reporter(progress, unit="question")
    measured = []  # pass 1: every file's segment, loudness and true peak (float32 keeps the memory down)
    for qi, q in enumerate(questions):
        names = ["reference_track", "input_track"] + [c.name for c in spec.conditions]
        parts = [source.segment("reference", q.song, q.stem), source.segment("input", q.song, q.stem)]
        parts += [source.condition(c, q.song, q.stem) for c in spec.conditions]
        n = min(p[0].shape[-1] for p in parts)
        if n < MIN_SECONDS * sr:
            short = names[int(np.argmin([p[0].shape[-1] for p in parts]))]
            raise MixevalError(f"{q.song}/{q.stem} ({short}): only {n / sr:.2f} s after the segment start; need {MIN_SECONDS} s")
        batch = np.stack([media.apply_fades(p[0][:, :n], sr, spec.fade_ms) for p in parts])
        loud, peak = media.measure(batch, sr, names=[f"{q.page_id} ({q.song}, {q.stem}): {nm}" for nm in names])
        measured.append((names, [p[1] for p in parts], batch.astype(np.float32), loud, peak))
        report(qi + 1, len(questions), f"questions: {q.song}, {q.stem}")
    report.close()
    level, excess = media.common_level(
        np.concatenate([m[3] for m in measured]), np.concatenate([m[4] for m in measured]),
        target_lufs=spec.target_lufs, ceiling_dbtp=spec.true_peak_dbtp,
    )
    excess = np.split(excess, np.cumsum([len(m[0]) for m in measured])[:-1])
    ext = spec.media_format
    pages, rows, clipped, limited = [], [], [], []
    for q, (names, sources, batch, loud, peak), over in zip(questions, measured, excess):  # pass 2: one level, write
        gain_db = level - loud
        n = batch.shape[-1]
        elements: list[WaetElement] = []
        for j, name in enumerate(names):
            tok = next(tokens)
            file = media_dir / f"{tok}.{ext}"
            n_clip = media.write_pcm16(file, batch[j].astype(np.float64) * 10.0 ** (gain_db[j] / 20.0), sr, media_format=ext)
            if n_clip:
                clipped.append(f"{file.name} ({q.page_id} {name}: {n_clip} samples)")
            if over[j] > 0:
                limited.append(f"{file.name} ({q.page_id} {name}: {over[j]:.2f} dB over the ceiling at {spec.target_lufs:g} LUFS)")
            if j < 2:
                eid, etype = f"{q.page_id}-{'reference' if j == 0 else 'input'}", "outside-reference"
                label, role, cond_label = OUTSIDE_LABELS[j], "outside_reference", OUTSIDE_LABELS[j]
                processing = "reference track (outside reference)" if j == 0 else "input track (outside reference)"
            else:
                cond = spec.conditions[j - 2]
                eid, etype, label, cond_label = f"{q.page_id}-{tok}", "normal", None, cond.display
                role = {"reference": "hidden_reference", "anchor": "anchor"}.get(cond.source, "stimulus")
                processing = cond.describe()
            elements.append(WaetElement(eid, file.name, etype, label))
            rows.append({
                "element_id": eid, "page_id": q.page_id, "question_type": q.question_type, "stem": q.stem,
                "song": q.song, "condition": name, "condition_label": cond_label, "role": role,
                "element_type": etype, "label": label or "", "file": f"media/{media_dir.name}/{file.name}",
                "processing": processing, "sources": ";".join(sources[j]),
                "segment_start_s": source.start_seconds(q.song), "duration_s": round(n / sr, 6), "sample_rate": sr,
                "gain_db": round(float(gain_db[j]), 4), "loudness_lufs": round(level, 3),
                "true_peak_dbtp": round(float(peak[j] + gain_db[j]), 3), "peak_excess_db": round(float(over[j]), 3),
                "clipped_samples": n_clip,
            })
        refs, rated = elements[:2], elements[2:]
        rated = [rated[int(i)] for i in order_rng.permutation(len(rated))]
        pages.append(WaetPage(q.page_id, q.title, tuple(refs + rated)))
    if limited:
        logger.warning(
            "test level lowered from %g to %.2f LUFS: %d file(s) would exceed the %g dBTP true-peak ceiling at %g LUFS",
            spec.target_lufs, level, len(limited), spec.true_peak_dbtp, spec.target_lufs,
        )
    return GeneratedTest(pages, rows, questions, clipped, level_lufs=level, peak_limited=limited)
