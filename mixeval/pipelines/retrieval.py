"""``mixeval retrieval``: FX retrieval (Recall@1/5/10, MRR) of FX encoders on the Table 1 item sets.

Under the ``paper`` protocol every FX configuration of a set is applied to all its segments, so
the items sharing a configuration on different content are each query's positives
(:func:`mixeval.metrics.retrieval.fx_retrieval`). The item sets, representations and embedding
cache are those of ``mixeval disentangle`` (:func:`~mixeval.pipelines.embedded_sets.embed_item_sets`):
after a ``disentangle`` run with the same settings and ``--cache-dir`` nothing is embedded again.
Under ``iid`` each item has its own configuration and retrieval is undefined, so it is refused.

Rows: the representations (encoders, baselines, pure noise) and the analytic chance level of a
uniformly random ranking (:func:`~mixeval.metrics.retrieval.retrieval_chance`); cells are mean ± std
over seeds of each case (multitrack / stem × full / single FX), each seed's value averaged over the
case's stems or effects.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from mixeval.errors import MixevalError
from mixeval.evalset import KINDS, EvalSetConfig, ItemSet
from mixeval.metrics.retrieval import fx_retrieval, retrieval_chance
from mixfx.io.paths import check_output_dir
from mixeval.outputs import locks_output, staged_outputs
from mixeval.pipelines.disentangle_embed import Representation
from mixeval.pipelines.embedded_sets import EmbedSettings, EvaluationResult, case_name, embed_item_sets, item_codes, per_seed_means
from mixeval.tables.table1 import table1_frame, write_table1
from mixfx.io.atomic import atomic_write
from mixfx.progress import Progress

__all__ = ["CHANCE_LABEL", "RetrievalConfig", "RetrievalResult", "retrieval_metrics", "retrieval_scores",
           "run_retrieval", "write_retrieval_table"]

CHANCE_LABEL = "chance (random ranking)"


def retrieval_metrics(ks: Sequence[int] = (1, 5, 10)) -> tuple[str, ...]:
    """Metric names of :func:`retrieval_scores`: ``R@k`` per ``k`` then ``MRR``."""
    return tuple(f"R@{k}" for k in ks) + ("MRR",)


@dataclass(frozen=True)
class RetrievalConfig(EmbedSettings):
    """Settings of :func:`run_retrieval`: the embedding step's
    (:class:`~mixeval.pipelines.embedded_sets.EmbedSettings`, as in ``DisentangleConfig``) and the cut-offs.

    Attributes:
        ideal: always False here (factor codes may be all zero, where cosine similarity is undefined).
        ks: recall cut-offs.
    """

    ideal: bool = False
    ks: tuple[int, ...] = (1, 5, 10)

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.evalset.protocol == "paper",
             f"protocol: retrieval needs 'paper' (configurations shared across segments); under {self.evalset.protocol!r} "
             "every item has its own configuration and has no positive"),
            (not self.ideal, "ideal: the codes = factors row is not defined for retrieval"),
            (len(self.ks) > 0 and all(isinstance(k, int) and k >= 1 for k in self.ks), f"ks: expected positive integers, got {self.ks}"),
        ] + super()._checks()


@dataclass
class RetrievalResult(EvaluationResult):
    """What :func:`run_retrieval` produced: the retrieval table (``table``) and the long ``scores``."""


def retrieval_scores(
    reps: Sequence[Representation], sets: dict[tuple[int, str], ItemSet], emb, *, ks: Sequence[int] = (1, 5, 10)
) -> pd.DataFrame:
    """FX retrieval of every representation on every set and kind, plus the analytic chance row.

    Args:
        reps: representations (``ideal`` rows are skipped).
        sets: ``(seed, mode)`` → paper-protocol item set.
        emb: ``(rep key, set key)`` → ``(kinds, items, dim)`` codes.
        ks: recall cut-offs.

    Returns:
        long table ``label, type, dim, case, subset, seed, metric, value``.

    Raises:
        MixevalError: a set without shared configurations (iid protocol), bad codes.
    """
    rows = []
    for s in sets.values():
        if s.protocol != "paper":
            raise MixevalError(f"seed {s.seed}, {s.mode} FX: retrieval needs the 'paper' protocol, got {s.protocol!r}")
        chance = retrieval_chance(s.config_id, ks=ks)
        for kind in KINDS:
            base = dict(case=case_name(s.mode, kind), subset=kind if s.mode == "full" else f"{s.mode}/{kind}", seed=s.seed)
            for r in reps:
                if r.type == "ideal":
                    continue
                try:
                    res = fx_retrieval(item_codes(r, s, kind, None, emb), s.config_id, ks=ks)
                except MixevalError as exc:
                    raise MixevalError(f"{r.label}, seed {s.seed}, {s.mode} FX, {kind}: {exc}") from None
                rows += [dict(label=r.label, type=r.type, dim=r.dim, **base, metric=m, value=v) for m, v in res.items()]
            rows += [dict(label=CHANCE_LABEL, type="chance", dim=0, **base, metric=m, value=v) for m, v in chance.items()]
    return pd.DataFrame(rows)


def write_retrieval_table(scores: pd.DataFrame, path: str | os.PathLike, *, ks: Sequence[int] = (1, 5, 10),
                          note: str = "", formats: Sequence[str] = ("csv", "md", "tex")) -> tuple[pd.DataFrame, str]:
    """Aggregate :func:`retrieval_scores` (mean ± std over seeds) and write ``<path>.{csv,md,tex}``.

    Returns:
        the table (one row per label, in order of appearance) and its Markdown text.
    """
    table = table1_frame(per_seed_means(scores), metrics=retrieval_metrics(ks))
    written = write_table1(table, path, note=note, metrics=retrieval_metrics(ks), label="tab:retrieval")
    for fmt, p in written.items():
        if fmt not in formats:
            p.unlink()
    return table, Path(written["md"]).read_text(encoding="utf-8") if "md" in formats else ""


def retrieval_note(ev: EvalSetConfig, seeds: int, normalized: bool) -> str:
    """The reading note under the retrieval table."""
    return (f"FX retrieval by cosine similarity: each item queries the other {ev.n_items - 1} items of its set; the "
            f"{ev.segments - 1} other segments with its FX configuration are the positives ({ev.segments} segments × "
            f"{ev.configs} configurations, {ev.seconds:.2f} s, split '{ev.split}'{'' if normalized else ', not FX-normalized'}). "
            f"R@k: a positive among the k nearest; MRR: mean reciprocal rank of the first positive. Mean ± std (ddof=0) "
            f"over {seeds} seed(s). Bold: best per column (the analytic chance row excluded).")


@locks_output
def run_retrieval(
    encoders: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] = (),
    config: RetrievalConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    ir_dir: str | os.PathLike | None = None,
    progress: Progress = False,
) -> RetrievalResult:
    """FX retrieval of FX encoders and baselines: ``retrieval.{csv,md,tex}``, ``scores.csv``, ``run.json``.

    Args:
        encoders: FXencoder checkpoints.
        data: dataset in the MUSDB18-HQ layout.
        out_dir: results folder.
        labels: row labels of the encoders.
        config: settings (default :class:`RetrievalConfig`, the paper's sizes).
        cache_dir: embedding cache (default ``out_dir/cache``; pass ``disentangle``'s to reuse it).
        ir_dir: impulse responses for the reverb.
        progress: ``True`` for tqdm bars on stderr, or a :class:`~mixfx.progress.ProgressFn`
            (``(done, total, "embed")``, :func:`~mixeval.pipelines.embedded_sets.embed_item_sets`).

    Raises:
        MixevalError / MixfxError: nothing to evaluate, bad checkpoints or dataset — before any file is written.
    """
    cfg = config or RetrievalConfig()
    out_dir = check_output_dir(out_dir, option="--out")
    if cache_dir is not None:
        check_output_dir(cache_dir, option="--cache-dir")
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    embedded = embed_item_sets(encoders, data, labels=labels, settings=cfg.embed_settings(),
                               cache_dir=cache_dir if cache_dir is not None else out_dir / "cache", ir_dir=ir_dir,
                               progress=progress)
    times = dict(embedded.times)
    t0 = time.perf_counter()
    scores = retrieval_scores(embedded.reps, embedded.sets, embedded.emb, ks=cfg.ks)
    times["metrics"] = time.perf_counter() - t0
    with staged_outputs(out_dir, prefix=".retrieval.") as staged:
        table, markdown = write_retrieval_table(scores, staged / "retrieval", ks=cfg.ks,
                                                note=retrieval_note(cfg.evalset, cfg.seeds, embedded.normalized))
        with atomic_write(staged / "scores.csv", "w", encoding="utf-8", newline="") as f:
            scores.to_csv(f, index=False, lineterminator="\n")
        times["total"] = time.perf_counter() - t_start
        run = {"config": cfg.to_dict(), "representations": [r.to_dict() for r in embedded.reps], "notes": embedded.notes,
               "fx_normalized": embedded.normalized, "fingerprint": embedded.fingerprint,
               "timings_s": {k: round(v, 3) for k, v in times.items()}}
        with atomic_write(staged / "run.json", "w", encoding="utf-8") as f:
            json.dump(run, f, indent=1, default=str)
    return RetrievalResult(out_dir, staged.files, table, scores, embedded.reps, times, embedded.cache.hits,
                           embedded.cache.misses, embedded.notes, markdown)
