"""The style-transfer evaluation set of Table 2 (Koo et al. 2023 §3.4.1): inputs, references, ground truths.

For one seed, ``examples`` items are drawn from a split (the paper: the FX-normalized test split).
Item ``i`` holds:

* ``x``: a multitrack segment of song ``i`` (songs visited in a seeded order, all four stems active);
* ``c``: one random FXmanipulator configuration per stem (the full chain, official ranges and
  probabilities of the chain given);
* ``ref = c(another segment)``: the reference, per stem — from the **same song** (a segment not
  overlapping ``x`` where possible) or from **another song** (``reference="other-song"``);
* ``gt = c(x)``: the ground truth, per stem.

Single-stem evaluation takes every stem of every item; the multitrack evaluation converts each stem
with its own reference stem and sums (``y = Σ y_stem``; references and ground truths are sums too).

Which reference the paper's numbers correspond to: the paper does not say. Its MixFXcloner is trained
and validated on same-song pairs (the official data loader draws A and B from one song's stem, and so
does :class:`mixfx.train.batches.ClonerBatches`), so ``same-song`` is most likely what Table 2 reports
and is the default; ``other-song`` is the harder, realistic case of ``mixfx transfer``.

The set is a pure function of (dataset, chain, config): :func:`save_manifest` writes every item
(song names, segment offsets in samples, and each stem's full FX configuration) as JSON and
:func:`load_manifest` rebuilds the identical set — on anyone's copy of the dataset.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from mixeval.errors import MixevalError
from mixeval.evalset import multitrack_starts, seeded_generator
from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.params import FXConfig
from mixfx.io.atomic import atomic_write
from mixfx.io.hashing import json_sha256

__all__ = [
    "REFERENCES", "TransferItem", "TransferSet", "TransferSetConfig", "load_manifest", "render_transfer_set",
    "check_songs", "iter_batches", "sample_transfer_set", "save_manifest",
]

MANIFEST_VERSION = 1
REFERENCES = ("same-song", "other-song")


@dataclass(frozen=True)
class TransferSetConfig:
    """Size and sampling of the Table 2 evaluation set.

    Attributes:
        examples: items (each: four stems and their sum); paper text: unstated, default 50.
        seconds: segment length of ``x`` and ``ref`` (paper: 11.8 s).
        reference: ``"same-song"`` or ``"other-song"`` (see the module docstring).
        split: dataset split (paper: the FX-normalized test split).
        seed: seeds segments and FX configurations.
        silence_threshold_db, min_active: a segment needs every stem active (frame RMS above the
            threshold) over ``min_active`` of its frames.
    """

    examples: int = 50
    seconds: float = 11.8
    reference: str = "same-song"
    split: str = "test"
    seed: int = 0
    silence_threshold_db: float | None = -60.0
    min_active: float = 0.8

    def __post_init__(self) -> None:
        checks = [
            (self.examples >= 2, f"--examples: expected ≥ 2 (paired tests need pairs), got {self.examples}"),
            (self.seconds > 0.5, f"--seconds: expected > 0.5 (the loudness measures need 0.4 s), got {self.seconds}"),
            (self.reference in REFERENCES, f"--reference: expected one of {', '.join(REFERENCES)}, got {self.reference!r}"),
            (0 < self.min_active <= 1, f"min_active: expected in (0, 1], got {self.min_active}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise MixevalError(msg)

    @property
    def samples(self) -> int:
        return int(round(self.seconds * SAMPLE_RATE))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TransferItem:
    """One item: input segment of ``song`` at ``start``, reference segment of ``ref_song`` at ``ref_start``."""

    song: str
    start: int
    ref_song: str
    ref_start: int


@dataclass
class TransferSet:
    """The items and, per stem, their FX configurations (``fx[stem]`` has one row per item)."""

    config: TransferSetConfig
    items: list[TransferItem]
    fx: dict[str, FXConfig]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def key(self) -> str:
        """SHA-256 of the manifest (cache key of everything rendered from the set)."""
        return json_sha256(_manifest(self))


def _pick(pool: np.ndarray, g: torch.Generator) -> int:
    return int(pool[int(torch.randint(pool.size, (1,), generator=g))])


def sample_transfer_set(data: MultitrackSegments, chain: FXManipulator, config: TransferSetConfig) -> TransferSet:
    """Draw the items and FX configurations (no audio is processed; only activity is read).

    Raises:
        MixevalError: the split has no song with ``seconds`` of all-stem activity, or fewer than two
            such songs for ``reference="other-song"``.
    """
    samples = config.samples
    g = seeded_generator(config.seed, 0x7AB2)
    order = torch.randperm(len(data.songs), generator=g).tolist()
    pools = {s: p for s in order if (p := multitrack_starts(data, s, samples)).size}
    usable = [s for s in order if s in pools]
    need = 2 if config.reference == "other-song" else 1
    if len(usable) < need:
        raise MixevalError(
            f"{data.root}: split {config.split!r} has {len(usable)} song(s) with {config.seconds:g} s where every stem is "
            f"active; --reference {config.reference} needs {need} (use a shorter --seconds)")
    items = []
    for i in range(config.examples):
        s = usable[i % len(usable)]
        start = _pick(pools[s], g)
        if config.reference == "same-song":
            r = s
            far = pools[s][np.abs(pools[s] - start) >= samples]
            ref_start = _pick(far if far.size else pools[s], g)
        else:
            others = [o for o in usable if o != s]
            r = others[int(torch.randint(len(others), (1,), generator=g))]
            ref_start = _pick(pools[r], g)
        items.append(TransferItem(data.songs[s].name, start, data.songs[r].name, ref_start))
    fx = {stem: chain.sample(config.examples, generator=seeded_generator(config.seed, 0xF0, k), stems=stem)
          for k, stem in enumerate(STEMS)}
    return TransferSet(config, items, fx)


# ----------------------------------------------------------------------------------------- manifest


def _config_to_json(c: FXConfig) -> dict:
    return {
        "stems": list(c.stems), "single_fx": c.single_fx,
        "applied": {k: v.tolist() for k, v in c.applied.items()},
        "values": {k: {"dtype": str(v.dtype).replace("torch.", ""), "data": v.tolist()} for k, v in c.values.items()},
        "eq_first": c.eq_first.tolist(), "pan_first": c.pan_first.tolist(),
    }


def _config_from_json(d: dict, chain: FXManipulator, where: str) -> FXConfig:
    try:
        values = {k: torch.tensor(v["data"], dtype=getattr(torch, v["dtype"])) for k, v in d["values"].items()}
        applied = {k: torch.tensor(v, dtype=torch.bool) for k, v in d["applied"].items()}
        config = FXConfig(list(d["stems"]), applied, values, torch.tensor(d["eq_first"], dtype=torch.bool),
                          torch.tensor(d["pan_first"], dtype=torch.bool), chain.specs, d.get("single_fx"))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise MixevalError(f"{where}: malformed FX configuration ({type(err).__name__}: {err})") from None
    expected = {s.key for s in chain.specs}
    if set(values) != expected:
        raise MixevalError(f"{where}: FX parameters {sorted(set(values) ^ expected)[:3]} differ from this FX chain's")
    return config


def _manifest(s: TransferSet) -> dict:
    return {
        "format": "mixeval-table2-items", "version": MANIFEST_VERSION, "sample_rate": SAMPLE_RATE,
        "config": s.config.to_dict(), "items": [dataclasses.asdict(i) for i in s.items],
        "fx": {stem: _config_to_json(c) for stem, c in s.fx.items()},
    }


def save_manifest(s: TransferSet, path: str | os.PathLike) -> Path:
    """Write the set as JSON (atomically): config, items (songs, offsets in samples), each stem's FX."""
    path = Path(path)
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(_manifest(s), f, indent=1)
        f.write("\n")
    return path


def load_manifest(path: str | os.PathLike, chain: FXManipulator) -> TransferSet:
    """Rebuild the set saved by :func:`save_manifest` (bit-identical FX parameters).

    Raises:
        MixevalError: unreadable file, another format or version, or a malformed entry.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MixevalError(f"{path}: --items manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MixevalError(f"{path}: not a readable JSON manifest ({err})") from None
    if not isinstance(d, dict) or d.get("format") != "mixeval-table2-items":
        raise MixevalError(f"{path}: not a mixeval table2 manifest (written by `mixeval table2`)")
    if d.get("version") != MANIFEST_VERSION or d.get("sample_rate") != SAMPLE_RATE:
        raise MixevalError(f"{path}: manifest version {d.get('version')} at {d.get('sample_rate')} Hz; expected "
                           f"version {MANIFEST_VERSION} at {SAMPLE_RATE} Hz")
    try:
        config = TransferSetConfig(**d["config"])
        items = [TransferItem(str(i["song"]), int(i["start"]), str(i["ref_song"]), int(i["ref_start"])) for i in d["items"]]
        fx = {stem: _config_from_json(d["fx"][stem], chain, f"{path}: fx[{stem}]") for stem in STEMS}
    except (KeyError, TypeError, ValueError) as err:
        raise MixevalError(f"{path}: malformed manifest ({type(err).__name__}: {err})") from None
    if len(items) != config.examples or any(len(c) != len(items) for c in fx.values()):
        raise MixevalError(f"{path}: {len(items)} items but {config.examples} examples / FX rows")
    return TransferSet(config, items, fx)


# ----------------------------------------------------------------------------------------- audio


def _song_index(data: MultitrackSegments, name: str, path: str) -> int:
    for k, song in enumerate(data.songs):
        if song.name == name:
            return k
    raise MixevalError(f"{path}: the item set names song {name!r}, which the {data.split!r} split of {data.root} lacks")


def check_songs(s: TransferSet, data: MultitrackSegments, where: str = "items") -> None:
    """Every song the set names is in ``data``'s split, and no offset is negative.

    Raises:
        MixevalError: naming the first missing song or bad offset.
    """
    for item in s.items:
        for name, start in ((item.song, item.start), (item.ref_song, item.ref_start)):
            _song_index(data, name, where)
            if start < 0:
                raise MixevalError(f"{where}: negative segment offset {start} in {name!r}")


@torch.no_grad()
def render_transfer_set(s: TransferSet, data: MultitrackSegments, chain: FXManipulator, *, batch_size: int = 8,
                        device: torch.device | str = "cpu") -> dict[str, dict[str, torch.Tensor]]:
    """Read and process every item: ``{"x" | "ref" | "gt": {stem: (N, 2, T) float32 CPU}}``."""
    n, samples = len(s), s.config.samples
    index = {song.name: k for k, song in enumerate(data.songs)}
    out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in ("x", "ref", "gt")}
    for stem in STEMS:
        x = torch.stack([data.read(index[i.song], stem, i.start, samples) for i in s.items])
        raw_ref = torch.stack([data.read(index[i.ref_song], stem, i.ref_start, samples) for i in s.items])
        ref, gt = torch.empty_like(x), torch.empty_like(x)
        for lo in range(0, n, batch_size):
            sel = list(range(lo, min(n, lo + batch_size)))
            c = s.fx[stem].select(sel)
            ref[sel] = chain.apply(raw_ref[sel].to(device), c).float().cpu()
            gt[sel] = chain.apply(x[sel].to(device), c).float().cpu()
        out["x"][stem], out["ref"][stem], out["gt"][stem] = x, ref, gt
    return out


def iter_batches(n: int, batch_size: int) -> Iterator[list[int]]:
    """Index lists of ``batch_size`` consecutive items covering ``range(n)``."""
    for lo in range(0, n, batch_size):
        yield list(range(lo, min(n, lo + batch_size)))
