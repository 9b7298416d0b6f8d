"""The disentanglement evaluation set of Koo et al. §3.3: segments × FX configurations, with factors.

For one seed, ``segments`` multitrack segments (all four stems at the same song position) are cut
from a split (the paper: the FX-normalized test split, 25 segments from 25 songs). For every *FX
mode* — ``"full"`` (the whole FXmanipulator chain) or one effect of :data:`mixfx.fx.params.FX_NAMES`
(that effect alone, always applied) — each stem is processed with ``configs`` random
configurations, drawn per stem as in the official generator, and the multitrack item is the sum of
the four processed stems. Items are ordered configuration-major: item ``i`` is segment
``i % segments`` under configuration slot ``i // segments`` (the unshuffled KFold of DCI-RF then
holds out whole configurations).

Protocols (``metrics_notes.md`` §5):

* ``"paper"``: configuration slot ``k`` has the same parameters for every segment (10 distinct
  configurations shared by 25 contents, as in the paper and its t-SNE). Every factor column then
  takes only ``configs`` distinct values and is a function of the configuration id, so even codes
  equal to the factors score far below 1 on DCIMIG (≈ 0.15 for 5 factors).
* ``"iid"``: every item has its own configuration (ideal codes score ≈ 0.9 on DCIMIG).

Factors (:func:`mixeval.evalset_factors.item_factors`): the sampled FX parameters of every item,
normalised to their ranges, per case (:mod:`mixeval.evalset_factors` states the rules).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from mixeval.errors import MixevalError
from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.params import FX_NAMES, FXConfig
from mixfx.io.hashing import json_sha256
from mixfx.seeds import seeded_generator

logger = logging.getLogger(__name__)

__all__ = [
    "CASES", "KINDS", "MODES", "EvalSetConfig", "ItemSet", "Segment", "chain_fingerprint",
    "dataset_fingerprint", "load_segments", "plan_segments", "render_items",
    "multitrack_starts", "sample_item_set", "seeded_generator",
]

SET_VERSION = "1"
MODES = ("full",) + FX_NAMES
"""FX modes in a fixed order (their index seeds the draws, so a subset of effects keeps its values)."""
KINDS = STEMS + ("mixture",)
"""The items of every set: each processed stem, and their sum (the multitrack)."""
CASES = ("multitrack_full", "stem_full", "multitrack_single", "stem_single")
"""Table 1's four cases: (multitrack | single stem) × (full FX | single FX)."""
PROTOCOLS = ("paper", "iid")
CATEGORICAL = ("drop", "onehot")


@dataclass(frozen=True)
class EvalSetConfig:
    """Size and protocol of the evaluation set (defaults: the paper's).

    Attributes:
        segments: multitrack segments (contents) per set (paper: 25).
        configs: FX configurations per set (paper: 10) → ``segments × configs`` items.
        seconds: segment length in seconds (default 2^19 samples, the official segment length).
        protocol: ``"paper"`` (configurations shared by all segments) or ``"iid"``.
        split: dataset split the segments come from (paper: the FX-normalized test split).
        segments_per_song: most segments taken from one song (1: ``segments`` different songs).
        single_fx: effects evaluated one at a time (every effect by default).
        categorical: ``"drop"`` or ``"onehot"`` for the pan law and IR index factors.
        silence_threshold_db: a frame below this RMS is silent; a segment needs every stem active
            over ``min_active`` of its frames. ``None`` disables the check.
        min_active: share of active frames per stem.
        sample_rate: working rate in Hz.
    """

    segments: int = 25
    configs: int = 10
    seconds: float = 2**19 / SAMPLE_RATE
    protocol: str = "paper"
    split: str = "test"
    segments_per_song: int = 1
    single_fx: tuple[str, ...] = FX_NAMES
    categorical: str = "drop"
    silence_threshold_db: float | None = -60.0
    min_active: float = 0.8
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "single_fx", tuple(self.single_fx))
        checks = [
            (self.segments >= 2, f"segments: expected ≥ 2, got {self.segments}"),
            (self.configs >= 2, f"configs: expected ≥ 2 (a single configuration leaves every factor constant), got {self.configs}"),
            (self.seconds > 0, f"seconds: expected > 0, got {self.seconds}"),
            (self.protocol in PROTOCOLS, f"protocol: expected one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"),
            (self.segments_per_song >= 1, f"segments_per_song: expected ≥ 1, got {self.segments_per_song}"),
            (self.categorical in CATEGORICAL, f"categorical: expected one of {', '.join(CATEGORICAL)}, got {self.categorical!r}"),
            (0 < self.min_active <= 1, f"min_active: expected in (0, 1], got {self.min_active}"),
            (len(set(self.single_fx)) == len(self.single_fx), f"single_fx: repeated effect in {self.single_fx}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise MixevalError(msg)
        bad = [fx for fx in self.single_fx if fx not in FX_NAMES]
        if bad:
            raise MixevalError(f"single_fx: unknown effect {bad[0]!r}; expected some of {', '.join(FX_NAMES)}")

    @property
    def segment_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    @property
    def n_items(self) -> int:
        return self.segments * self.configs

    @property
    def modes(self) -> tuple[str, ...]:
        """``("full",)`` plus the single effects, in :data:`MODES` order."""
        return ("full",) + tuple(fx for fx in FX_NAMES if fx in self.single_fx)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Segment:
    """One multitrack content: ``samples`` from ``start`` (working-rate samples) of a song."""

    song: str
    song_index: int
    start: int


@dataclass
class ItemSet:
    """One seed × FX mode: ``segments × configs`` items per kind (four stems and the multitrack).

    Attributes:
        seed: evaluation seed.
        mode: ``"full"`` or an effect name.
        protocol: ``"paper"`` or ``"iid"``.
        segments: the contents.
        content: ``(n_items,)`` segment index of each item.
        config_id: ``(n_items,)`` configuration of each item (paper: slot ``0..configs-1``; iid: item index).
        fx: stem → the per-item :class:`FXConfig` (length ``n_items``).
        key: hash of everything that defines the rendered audio (cache key).
    """

    seed: int
    mode: str
    protocol: str
    segments: list[Segment]
    content: np.ndarray
    config_id: np.ndarray
    fx: dict[str, FXConfig]
    key: str = ""

    def __len__(self) -> int:
        return int(self.content.size)


def dataset_fingerprint(data: MultitrackSegments) -> str:
    """Hash of the split's stem files (names, sizes, modification times) — cheap, no audio read."""
    rows = []
    for song in data.songs:
        for stem in data.stems:
            st = song.stem_path(stem).stat()
            rows.append([song.name, stem, st.st_size, st.st_mtime_ns])
    return json_sha256({"split": data.split, "files": rows, "sample_rate": data.sample_rate})


def chain_fingerprint(chain: FXManipulator) -> str:
    """Hash of the FX chain's ranges, probabilities, rate and impulse responses."""
    bank = chain.ir_bank
    irs = hashlib.sha256(bank.irs.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    return json_sha256({
        "ranges": dataclasses.asdict(chain.ranges), "probabilities": chain.probabilities.to_dict(),
        "sample_rate": chain.sample_rate, "irs": irs, "ir_lengths": [int(v) for v in bank.lengths.tolist()],
    })


def multitrack_starts(data: MultitrackSegments, song: int, samples: int) -> np.ndarray:
    """Start offsets (working-rate samples) where every stem of ``song`` is active for ``samples``; may be empty."""
    starts = None
    for stem in STEMS:
        v = data.valid_starts(song, stem, samples)
        starts = v if starts is None else np.intersect1d(starts, v)
    return np.asarray(starts, dtype=np.int64) * int(data.frame_seconds * data.sample_rate)


def plan_segments(data: MultitrackSegments, config: EvalSetConfig, seed: int) -> list[Segment]:
    """Choose ``config.segments`` multitrack segments (every stem active), seeded.

    Songs are visited in a seeded random order; each gives up to ``segments_per_song`` segments at
    random positions where all stems are active (non-overlapping while possible).

    Raises:
        MixevalError: the split has too few usable songs for the requested segments.
    """
    samples = config.segment_samples
    g = seeded_generator(seed, 0xD15)
    out: list[Segment] = []
    usable = 0
    for s in torch.randperm(len(data.songs), generator=g).tolist():
        pool = multitrack_starts(data, s, samples)
        if pool.size == 0:
            continue
        usable += 1
        chosen: list[int] = []
        for _ in range(min(config.segments_per_song, config.segments - len(out))):
            free = pool[[all(abs(int(p) - c) >= samples for c in chosen) for p in pool]]
            cand = free if free.size else pool[~np.isin(pool, chosen)]
            if not cand.size:
                break
            chosen.append(int(cand[int(torch.randint(cand.size, (1,), generator=g))]))
        out += [Segment(data.songs[s].name, s, c) for c in chosen]
        if len(out) == config.segments:
            return out
    hint = "use fewer --segments, a shorter --seconds or more --segments-per-song"
    raise MixevalError(
        f"{data.root}: split {config.split!r} has {usable} of {len(data.songs)} songs with {config.seconds:.2f} s "
        f"where every stem is active, giving {len(out)} of the {config.segments} segments requested ({hint})"
    )


def load_segments(data: MultitrackSegments, segments: Sequence[Segment], samples: int) -> dict[str, torch.Tensor]:
    """Read the stems of every segment: stem → ``(n_segments, 2, samples)`` float32 (CPU)."""
    return {stem: torch.stack([data.read(seg.song_index, stem, seg.start, samples) for seg in segments]) for stem in STEMS}


def sample_item_set(
    chain: FXManipulator, segments: Sequence[Segment], config: EvalSetConfig, *, seed: int, mode: str,
    protocol: str | None = None, fingerprint: str = "",
) -> ItemSet:
    """Draw the FX configurations of one set (no audio is touched).

    Args:
        chain: the FXmanipulator.
        segments: contents from :func:`plan_segments`.
        config: sizes.
        seed: evaluation seed; configurations depend on ``(seed, mode, stem)`` only.
        mode: ``"full"`` or an effect.
        protocol: overrides ``config.protocol`` (the figures always use the paper's).
        fingerprint: extra text for the key (dataset and chain fingerprints).
    """
    if mode not in MODES:
        raise MixevalError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    protocol = protocol or config.protocol
    n_seg, n_cfg = len(segments), config.configs
    n = n_seg * n_cfg
    content = np.arange(n) % n_seg
    fx: dict[str, FXConfig] = {}
    single = None if mode == "full" else mode
    for si, stem in enumerate(STEMS):
        g = seeded_generator(seed, MODES.index(mode), si, 1 if protocol == "paper" else 2)
        if protocol == "paper":
            drawn = chain.sample(n_cfg, generator=g, stems=stem, single_fx=single)
            fx[stem] = drawn.select((np.arange(n) // n_seg).tolist())
        else:
            fx[stem] = chain.sample(n, generator=g, stems=stem, single_fx=single)
    config_id = np.arange(n) // n_seg if protocol == "paper" else np.arange(n)
    h = hashlib.sha256()
    for stem in STEMS:
        c = fx[stem]
        for name in sorted(c.values):
            h.update(name.encode() + c.values[name].numpy().tobytes())
        for name in sorted(c.applied):
            h.update(name.encode() + c.applied[name].numpy().tobytes())
        h.update(c.eq_first.numpy().tobytes() + c.pan_first.numpy().tobytes())
    key = json_sha256({
        "version": SET_VERSION, "fingerprint": fingerprint, "seed": seed, "mode": mode, "protocol": protocol,
        "segments": [dataclasses.astuple(s) for s in segments], "samples": config.segment_samples,
        "sample_rate": config.sample_rate, "fx": h.hexdigest(),
    })
    return ItemSet(seed, mode, protocol, list(segments), content, config_id, fx, key)


@torch.no_grad()
def render_items(
    items: ItemSet, audio: dict[str, torch.Tensor], chain: FXManipulator, *, batch_size: int = 8,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Process the items batch by batch.

    Args:
        items: the set.
        audio: stem → ``(n_segments, 2, samples)`` from :func:`load_segments`.
        chain: the FXmanipulator the set was drawn with.
        batch_size: items per batch.
        device: where the effects run.

    Yields:
        ``(indices (B,), kind → (B, 2, samples) on device)`` for the four stems and ``"mixture"``
        (the sum of the processed stems).
    """
    n = len(items)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        out = {}
        for stem in STEMS:
            x = audio[stem][torch.from_numpy(items.content[idx])].to(device)
            out[stem] = chain.apply(x, items.fx[stem].select(idx.tolist()))
        out["mixture"] = out[STEMS[0]] + out[STEMS[1]] + out[STEMS[2]] + out[STEMS[3]]
        yield idx, out
