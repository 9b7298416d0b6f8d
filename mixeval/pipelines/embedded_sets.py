"""The embedding step shared by ``mixeval disentangle`` and ``mixeval retrieval``.

:func:`embed_item_sets` loads the representations (bad checkpoints fail before anything is
written), plans the segments of each seed, draws the item sets (seed × FX mode,
:mod:`mixeval.evalset`) and embeds every item with every representation, from the
:class:`~mixeval.pipelines.disentangle_embed.Cache` when possible. Two commands with the same
settings and cache folder therefore embed each set once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from mixeval.baselines import noise_codes
from mixeval.errors import MixevalError
from mixeval.evalset import (
    KINDS, MODES, EvalSetConfig, ItemSet, Segment, chain_fingerprint, dataset_fingerprint, load_segments, plan_segments,
    render_items, sample_item_set,
)
from mixeval.pipelines.disentangle_embed import (
    BASELINES, Cache, Representation, build_representations, embed_batch,
)
from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import load_ir_folder
from mixfx.fxnorm.dataset import NORMALIZATION_RECORD, is_fx_normalized
from mixfx.io.hashing import json_sha256
from mixfx.models.loading import resolve_device
from mixfx.progress import Progress, progress_reporter

logger = logging.getLogger(__name__)

__all__ = ["EmbedSettings", "EmbeddedSets", "EvaluationResult", "case_name", "embed_item_sets", "item_codes", "per_seed_means"]

_PLAN_FIELDS = ("segments", "seconds", "split", "segments_per_song", "silence_threshold_db", "min_active", "sample_rate")


@dataclass(frozen=True)
class EmbedSettings:
    """What the embedding step needs; ``DisentangleConfig`` and ``RetrievalConfig`` extend it.

    Attributes:
        evalset: item-set sizes and protocol.
        seeds: evaluation seeds (paper: 4); seed ``s`` redraws segments and FX.
        baselines: subset of :data:`~mixeval.pipelines.disentangle_embed.BASELINES`; pure noise is always added.
        ideal: add the reference row "codes = factors".
        noise_dim: size of the noise codes (default: the first representation's — encoder, else baseline).
        random_seed: seed of the random-init FXencoder.
        batch_size: items per FX / encoder batch.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …
    """

    evalset: EvalSetConfig = field(default_factory=EvalSetConfig)
    seeds: int = 4
    baselines: tuple[str, ...] = ()
    ideal: bool = True
    noise_dim: int | None = None
    random_seed: int = 0
    batch_size: int = 8
    device: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "baselines", tuple(dict.fromkeys(self.baselines)))
        for ok, msg in self._checks():
            if not ok:
                raise MixevalError(msg)

    def _checks(self) -> list[tuple[bool, str]]:
        """``(ok, message)`` pairs; the first failing one is raised (subclasses add theirs)."""
        return [
            (self.seeds >= 1, f"seeds: expected ≥ 1, got {self.seeds}"),
            (self.batch_size >= 1, f"batch_size: expected ≥ 1, got {self.batch_size}"),
            (self.noise_dim is None or self.noise_dim >= 1, f"noise_dim: expected ≥ 1, got {self.noise_dim}"),
            (all(b in BASELINES for b in self.baselines), f"baselines: expected some of {', '.join(BASELINES)}, got {self.baselines}"),
        ]

    @classmethod
    def quick(cls, **changes):
        """Smoke-test sizes: 2 segments × 10 configurations of 1 s, 2 seeds (``changes`` win)."""
        ev = changes.pop("evalset", None) or EvalSetConfig(segments=2, configs=10, seconds=1.0)
        return cls(**{"evalset": ev, "seeds": 2, **changes})

    def embed_settings(self) -> "EmbedSettings":
        """Only the fields of the embedding step (what :func:`embed_item_sets` takes)."""
        return EmbedSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(EmbedSettings)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class EmbeddedSets:
    """Result of :func:`embed_item_sets`.

    Attributes:
        reps: the representations (encoders, baselines, noise, optionally ideal).
        sets: ``(seed, mode)`` → item set under the configured protocol.
        fig_sets: mode → seed-0 set under the paper protocol (same objects as ``sets`` under ``paper``).
        emb: ``(rep key, set key)`` → ``(kinds, items, dim)`` codes of the embedding representations.
        cache: the cache used (hit / miss counters).
        notes: warnings for the report (e.g. data not FX-normalized).
        normalized: whether ``data`` is FX-normalized.
        fingerprint: hash of the dataset and the FX chain.
        times: ``setup`` and ``embed`` seconds.
    """

    reps: list[Representation]
    sets: dict[tuple[int, str], ItemSet]
    fig_sets: dict[str, ItemSet]
    emb: dict[tuple[str, str], np.ndarray]
    cache: Cache
    notes: list[str]
    normalized: bool
    fingerprint: str
    times: dict[str, float]


@dataclass
class EvaluationResult:
    """What a command built on :func:`embed_item_sets` produced.

    Attributes:
        out_dir: the results folder.
        files: the files written there.
        table: one row per representation (mean ± std over seeds per case and metric).
        scores: the long per-seed, per-subset score table.
        representations: the evaluated representations.
        timings: seconds per stage (``setup``, ``embed``, ``metrics``, ``total`` …).
        cache_hits, cache_misses: embedding cache counters.
        notes: warnings for the report.
        markdown: the main table as Markdown (what the CLI prints).
    """

    out_dir: Path
    files: list[Path]
    table: pd.DataFrame
    scores: pd.DataFrame
    representations: list[Representation]
    timings: dict[str, float]
    cache_hits: int
    cache_misses: int
    notes: list[str]
    markdown: str = ""


def case_name(mode: str, kind: str) -> str:
    """Table 1 case of a set mode and a kind: ``multitrack_full``, ``stem_single`` …"""
    return ("multitrack" if kind == "mixture" else "stem") + ("_full" if mode == "full" else "_single")


def item_codes(r: Representation, s: ItemSet, kind: str, factors: np.ndarray | None, emb) -> np.ndarray:
    """Codes ``(items, dim)`` of representation ``r`` for one kind of set ``s``.

    ``ideal`` returns ``factors``; ``noise`` draws N(0, 1) codes seeded by the set and kind (the same in
    every command); the others read ``emb``.
    """
    if r.type == "ideal":
        if factors is None:
            raise MixevalError(f"{r.label}: needs the factor matrix")
        return factors
    if r.type == "noise":
        rng = np.random.default_rng([s.seed, MODES.index(s.mode), KINDS.index(kind), 7, int(s.protocol == "iid")])
        return noise_codes(len(s), r.dim, rng=rng)
    return emb[(r.key, s.key)][KINDS.index(kind)]


def per_seed_means(detail: pd.DataFrame) -> pd.DataFrame:
    """Average the long score table over the subsets of each case (stems, single effects), per seed.

    Args:
        detail: columns ``label, type, dim, case, seed, metric, value`` (one row per subset).

    Returns:
        the same columns, one row per label × case × seed × metric (NaN where every subset is NaN).
    """
    return (detail.groupby(["label", "type", "dim", "case", "seed", "metric"], sort=False)["value"]
            .agg(lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan).reset_index())


def embed_item_sets(
    encoders: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    *,
    labels: Sequence[str] = (),
    settings: EmbedSettings | None = None,
    cache_dir: str | os.PathLike,
    ir_dir: str | os.PathLike | None = None,
    figure_sets: bool = False,
    progress: Progress = False,
) -> EmbeddedSets:
    """Draw the item sets of every seed × FX mode and embed them with every representation.

    Args:
        encoders: FXencoder checkpoints.
        data: dataset in the MUSDB18-HQ layout.
        labels: row labels of the encoders.
        settings: sizes, seeds, baselines and device (default :class:`EmbedSettings`).
        cache_dir: embedding / plan cache folder.
        ir_dir: impulse responses for the reverb (default: the built-in synthetic bank).
        figure_sets: under ``iid``, also embed the paper-protocol seed-0 sets of ``fig_sets``.
        progress: ``True`` for tqdm bars on stderr, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, "embed")`` in items rendered and embedded.

    Returns:
        :class:`EmbeddedSets`.

    Raises:
        MixevalError / MixfxError: nothing to evaluate, bad checkpoints, a dataset without the split
            or with too few songs — before anything is written.
    """
    st = settings or EmbedSettings()
    ev = st.evalset
    t_start = time.perf_counter()
    if not encoders and not st.baselines:
        raise MixevalError("nothing to evaluate: give at least one encoder or a baseline")
    device = resolve_device(st.device)
    reps = build_representations(list(encoders), list(labels), baselines=st.baselines, sample_rate=ev.sample_rate,
                                 random_seed=st.random_seed, noise_dim=st.noise_dim, ideal=st.ideal)
    dataset = MultitrackSegments(data, ev.split, silence_threshold_db=ev.silence_threshold_db,
                                 min_active=ev.min_active, sample_rate=ev.sample_rate)
    chain = FXManipulator(sample_rate=ev.sample_rate, ir_bank=load_ir_folder(ir_dir, sample_rate=ev.sample_rate) if ir_dir else None)
    notes = []
    normalized = is_fx_normalized(data)
    if not normalized:
        notes.append(f"{data} is not FX-normalized (no {NORMALIZATION_RECORD}); the paper evaluates on the FX-normalized test split")
    fingerprint = json_sha256({"data": dataset_fingerprint(dataset), "chain": chain_fingerprint(chain)})
    cache = Cache(cache_dir)
    plans: dict[int, list[Segment]] = {}
    plan_keys = {}
    for seed in range(st.seeds):
        plan_keys[seed] = json_sha256({"fp": fingerprint, "seed": seed, **{k: getattr(ev, k) for k in _PLAN_FIELDS}})
        cached = cache.load_json("plans", plan_keys[seed])
        plans[seed] = [Segment(*s) for s in cached] if cached else plan_segments(dataset, ev, seed)
    for seed in range(st.seeds):  # written only once every seed has a plan
        cache.save_json("plans", plan_keys[seed], [dataclasses.astuple(s) for s in plans[seed]])
    for note in notes:
        logger.warning(note)
    sets = {(seed, mode): sample_item_set(chain, plans[seed], ev, seed=seed, mode=mode, fingerprint=fingerprint)
            for seed in range(st.seeds) for mode in ev.modes}
    fig_sets = {mode: (sets[(0, mode)] if ev.protocol == "paper" else
                       sample_item_set(chain, plans[0], ev, seed=0, mode=mode, protocol="paper", fingerprint=fingerprint))
                for mode in ev.modes}
    for r in reps:
        if r.module is not None:
            r.module.to(device).eval()
    times = {"setup": time.perf_counter() - t_start}

    report = progress_reporter(progress, unit="item")
    embedders = [r for r in reps if r.embeds]
    todo = list(sets.values()) + ([s for s in fig_sets.values() if s.protocol != ev.protocol] if figure_sets else [])
    emb: dict[tuple[str, str], np.ndarray] = {}
    missing: dict[str, list[Representation]] = {}
    for s in todo:
        for r in embedders:
            arr = cache.load_embeddings(r.key, s.key, (len(KINDS), len(s)))
            if arr is None:
                missing.setdefault(s.key, []).append(r)
            else:
                emb[(r.key, s.key)] = arr
    n_render = sum(len(s) for s in todo if s.key in missing)
    report(0, n_render, "embed")
    done = 0
    t0 = time.perf_counter()
    audio_cache: dict[int, dict[str, torch.Tensor]] = {}
    for s in todo:
        if s.key not in missing:
            continue
        if s.seed not in audio_cache:
            audio_cache = {s.seed: load_segments(dataset, s.segments, ev.segment_samples)}
        out = {r.key: np.zeros((len(KINDS), len(s), r.dim), dtype=np.float32) for r in missing[s.key]}
        for idx, batch in render_items(s, audio_cache[s.seed], chain, batch_size=st.batch_size, device=device):
            for r in missing[s.key]:
                for k, kind in enumerate(KINDS):
                    out[r.key][k, idx] = embed_batch(r, batch[kind])
            done += len(idx)
            report(done, n_render, "embed")
        for r in missing[s.key]:
            cache.save_embeddings(r.key, s.key, out[r.key])
            emb[(r.key, s.key)] = out[r.key]
    audio_cache.clear()
    report.close()
    times["embed"] = time.perf_counter() - t0
    return EmbeddedSets(reps, sets, fig_sets, emb, cache, notes, normalized, fingerprint, times)
