"""The listening-test specification: conditions, questions, media settings (TOML or code).

Example ``spec.toml`` (paths relative to the spec file)::

    name = "mst"
    prerendered = "stimuli/"          # <prerendered>/<condition>/<song>/<stem|mixture>.wav
    seed = 0
    multitrack_questions = 4
    stem_questions = 2                # per instrument
    segment_seconds = 10.0

    [[conditions]]
    name = "mee"
    label = "MEE"
    processing = "MixFXcloner conditioned on MEE"

    [[conditions]]
    name = "gt"
    processing = "input stems manipulated with the reference's FX"

    [[conditions]]
    name = "anchor"
    source = "anchor"                 # built in: input low-passed at 3.5 kHz, mono

    [segment_starts]                  # optional per-song start (s)
    song01 = 30.0

Condition sources: ``prerendered`` (files in ``<prerendered>/<folder or name>/``), the built-ins
``input`` (the input itself), ``anchor`` (input low-passed, mono) and ``reference`` (the
reference itself, a hidden reference for post-screening), and ``checkpoint`` (rendered by a
renderer plugged into the generator, e.g. ``mixfx transfer``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mixeval.errors import MixevalError
from mixeval.listening.media import MEDIA_FORMATS
from mixfx import SAMPLE_RATE, STEMS

__all__ = ["BUILTIN_SOURCES", "SOURCES", "ConditionSpec", "ListeningTestSpec", "load_spec"]

BUILTIN_SOURCES = ("input", "anchor", "reference")
SOURCES = ("prerendered", "checkpoint") + BUILTIN_SOURCES
RESERVED_FOLDERS = ("input", "reference")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
DEFAULT_SCALE = ((0, "Not similar"), (25, "Slightly similar"), (50, "Moderately similar"), (75, "Very similar"), (100, "Identical"))
DEFAULT_QUESTION = "How similar is each mix to the reference mix in FX characteristics and mixing style?"
DEFAULT_INSTRUCTIONS = (
    "Welcome, and thank you for taking part.\n\n"
    "On each page you hear a **Reference mix** and an **Input track**, and several numbered mixes. "
    "Each numbered mix is the input track processed to imitate the reference. Rate how similar each "
    "numbered mix is to the *reference mix* in terms of **audio effects (FX) characteristics and mixing style** "
    "(equalization, dynamics, panning, stereo width, reverb, level balance), not in musical content.\n\n"
    "Please use headphones in a quiet room and set a comfortable volume before you start; do not change "
    "it during the test. Playback starts when you press a play button."
)


@dataclass(frozen=True)
class ConditionSpec:
    """One system whose outputs are rated.

    Attributes:
        name: identifier used in the manifest and reports (letters, digits, ``_.-``).
        source: one of :data:`SOURCES`.
        label: display label in plots and tables (default: ``name``).
        folder: pre-rendered subfolder (default: ``name``).
        processing: free text stored in the manifest.
        checkpoint: model checkpoint for ``source="checkpoint"``.
        options: extra settings handed to a renderer.
    """

    name: str
    source: str = "prerendered"
    label: str | None = None
    folder: str | None = None
    processing: str = ""
    checkpoint: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.label or self.name

    def describe(self) -> str:
        """The ``processing`` text, or a default description of the source."""
        if self.processing:
            return self.processing
        return {
            "prerendered": f"pre-rendered files from folder {self.folder or self.name!r}",
            "input": "the input track itself (unprocessed)",
            "anchor": "input track low-passed and summed to mono (anchor)",
            "reference": "the reference track itself (hidden reference)",
            "checkpoint": f"rendered with checkpoint {self.checkpoint}",
        }[self.source]


@dataclass(frozen=True)
class ListeningTestSpec:
    """Everything ``make-listening-test`` needs besides the output folder.

    Attributes:
        name: test name: ``tests/<name>.xml`` and ``media/<name>/``.
        conditions: the rated systems, in display order.
        prerendered: folder with ``input/``, ``reference/`` and one folder per pre-rendered condition.
        songs: songs to draw from (default: every folder in ``<prerendered>/input``).
        stems: instruments for single-stem questions.
        multitrack_questions, stem_questions: question counts (stem questions are per instrument).
        seed: seeds song choice, blinded names and element order.
        sample_rate: rate of every media file (Hz).
        segment_seconds, segment_start_seconds: the excerpt cut from every file of a question.
        segment_starts: per-song start overrides (s).
        target_lufs: integrated loudness of every file of the test (BS.1770): one level for all pages.
        true_peak_dbtp: true-peak ceiling; when a file would exceed it at ``target_lufs``, the whole
            test is lowered by the largest excess (still one level), and those files are reported.
            None disables the ceiling (clipping is then reported).
        media_format: ``wav`` or ``flac`` (16-bit PCM either way; FLAC is about half the size to
            preload and decodes in WAET's Web Audio ``decodeAudioData``).
        fade_ms: fade-in/out length.
        anchor_cutoff_hz: low-pass cut-off of the built-in anchor.
        project_return: WAET ``setup@projectReturn`` (``save.php`` or ``local``).
        question, scale, instructions: texts shown to participants.
        axis: WAET interface name (the rating axis in the results).
    """

    name: str = "mixing_style_transfer"
    conditions: tuple[ConditionSpec, ...] = ()
    prerendered: Path | None = None
    songs: tuple[str, ...] = ()
    stems: tuple[str, ...] = STEMS
    multitrack_questions: int = 4
    stem_questions: int = 2
    seed: int = 0
    sample_rate: int = SAMPLE_RATE
    segment_seconds: float = 10.0
    segment_start_seconds: float = 0.0
    segment_starts: Mapping[str, float] = field(default_factory=dict)
    target_lufs: float = -23.0
    true_peak_dbtp: float | None = -1.0
    media_format: str = "wav"
    fade_ms: float = 20.0
    anchor_cutoff_hz: float = 3500.0
    project_return: str = "save.php"
    question: str = DEFAULT_QUESTION
    scale: tuple[tuple[int, str], ...] = DEFAULT_SCALE
    instructions: str = DEFAULT_INSTRUCTIONS
    axis: str = "similarity"

    def validate(self) -> "ListeningTestSpec":
        """Check every field; return ``self``.

        Raises:
            MixevalError: naming the field, the value and what is allowed.
        """
        if not _NAME.match(self.name):
            raise MixevalError(f"spec name {self.name!r}: use letters, digits, '_', '.', '-' (not starting with a digit)")
        if len(self.conditions) < 2:
            raise MixevalError(f"spec: need at least 2 conditions, got {len(self.conditions)}")
        names = [c.name for c in self.conditions]
        for c in self.conditions:
            if not _NAME.match(c.name):
                raise MixevalError(f"condition name {c.name!r}: use letters, digits, '_', '.', '-' (not starting with a digit)")
            if c.source not in SOURCES:
                raise MixevalError(f"condition {c.name!r}: unknown source {c.source!r}; allowed: {list(SOURCES)}")
            if c.source == "prerendered" and (c.folder or c.name) in RESERVED_FOLDERS:
                raise MixevalError(
                    f"condition {c.name!r}: folder {(c.folder or c.name)!r} is reserved for the references; "
                    f"use source = {c.name!r} for the built-in condition"
                )
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise MixevalError(f"spec: duplicate condition name(s) {sorted(dup)}")
        if self.prerendered is None:
            raise MixevalError("spec: 'prerendered' folder is required (it holds input/ and reference/ at least)")
        bad_stems = [s for s in self.stems if s not in STEMS]
        if bad_stems:
            raise MixevalError(f"spec: unknown stem(s) {bad_stems}; allowed: {list(STEMS)}")
        for key in ("multitrack_questions", "stem_questions"):
            if int(getattr(self, key)) < 0:
                raise MixevalError(f"spec {key}: must be >= 0, got {getattr(self, key)}")
        if self.multitrack_questions + self.stem_questions * len(self.stems) == 0:
            raise MixevalError("spec: no questions (multitrack_questions and stem_questions are both 0)")
        if not 8000 <= int(self.sample_rate) <= 192000:
            raise MixevalError(f"spec sample_rate: expected 8000..192000 Hz, got {self.sample_rate}")
        if not 1.0 <= float(self.segment_seconds) <= 60.0:
            raise MixevalError(f"spec segment_seconds: expected 1..60 s, got {self.segment_seconds}")
        if float(self.segment_start_seconds) < 0 or any(float(v) < 0 for v in self.segment_starts.values()):
            raise MixevalError("spec: segment start times must be >= 0 s")
        if not -70.0 < float(self.target_lufs) < 0.0:
            raise MixevalError(f"spec target_lufs: expected -70..0 LUFS, got {self.target_lufs}")
        if self.true_peak_dbtp is not None and not -20.0 <= float(self.true_peak_dbtp) <= 0.0:
            raise MixevalError(f"spec true_peak_dbtp: expected -20..0 dBTP or none, got {self.true_peak_dbtp}")
        if self.media_format not in MEDIA_FORMATS:
            raise MixevalError(f"spec media_format: expected one of {sorted(MEDIA_FORMATS)}, got {self.media_format!r}")
        if not 0.0 <= float(self.fade_ms) <= 500.0:
            raise MixevalError(f"spec fade_ms: expected 0..500 ms, got {self.fade_ms}")
        if not 100.0 <= float(self.anchor_cutoff_hz) < self.sample_rate / 2:
            raise MixevalError(f"spec anchor_cutoff_hz: expected 100 Hz .. Nyquist, got {self.anchor_cutoff_hz}")
        positions = [p for p, _ in self.scale]
        if not self.scale or any(not (isinstance(p, int) and 0 <= p <= 100) for p in positions):
            raise MixevalError(f"spec scale: positions must be integers in 0..100, got {positions}")
        if not _NAME.match(self.axis):
            raise MixevalError(f"spec axis {self.axis!r}: use letters, digits, '_', '.', '-'")
        return self

    def replace(self, **changes) -> "ListeningTestSpec":
        """A copy with ``changes`` applied (None values are ignored), validated."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["prerendered"] = str(self.prerendered) if self.prerendered else None
        d["conditions"] = [dict(dataclasses.asdict(c), options=dict(c.options)) for c in self.conditions]
        d["segment_starts"] = dict(self.segment_starts)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: Path | None = None, source: str = "spec") -> "ListeningTestSpec":
        """Build from a mapping (parsed TOML); relative paths resolve against ``base_dir``.

        Raises:
            MixevalError: unknown keys, wrong types, or invalid values.
        """
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MixevalError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        conds = []
        for i, c in enumerate(data.pop("conditions", [])):
            if isinstance(c, str):
                c = {"name": c, "source": c if c in BUILTIN_SOURCES else "prerendered"}
            if not isinstance(c, Mapping) or "name" not in c:
                raise MixevalError(f"{source}: conditions[{i}] needs at least a 'name'")
            cfields = {f.name for f in dataclasses.fields(ConditionSpec)}
            bad = sorted(set(c) - cfields)
            if bad:
                raise MixevalError(f"{source}: conditions[{i}] unknown key(s) {bad}; allowed: {sorted(cfields)}")
            conds.append(ConditionSpec(**{k: v for k, v in c.items()}))
        data["conditions"] = tuple(conds)
        if data.get("prerendered") is not None:
            p = Path(str(data["prerendered"])).expanduser()
            data["prerendered"] = p if p.is_absolute() or base_dir is None else base_dir / p
        for key in ("songs", "stems"):
            if key in data:
                data[key] = tuple(str(s) for s in data[key])
        if "scale" in data:
            try:
                data["scale"] = tuple((int(p), str(t)) for p, t in data["scale"])
            except (TypeError, ValueError):
                raise MixevalError(f"{source}: scale must be a list of [position, text] pairs") from None
        if data.get("true_peak_dbtp") in ("none", "off", False):
            data["true_peak_dbtp"] = None
        try:
            return cls(**data).validate()
        except TypeError as err:
            raise MixevalError(f"{source}: {err}") from None


def load_spec(path: str | os.PathLike) -> ListeningTestSpec:
    """Read a TOML spec file (relative paths resolve against its folder).

    Raises:
        MixevalError: missing file, TOML syntax error, or an invalid spec.
    """
    path = Path(path)
    if not path.is_file():
        raise MixevalError(f"{path}: spec file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise MixevalError(f"{path}: invalid TOML ({err})") from None
    except UnicodeDecodeError:
        raise MixevalError(f"{path}: spec is not UTF-8 text") from None
    return ListeningTestSpec.from_dict(data, base_dir=path.parent, source=str(path))
