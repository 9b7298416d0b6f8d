"""``mixeval disentangle``: Table 1 and Fig. 2 of Koo et al. for any set of FX encoders.

Steps: load every encoder (bad files fail before anything is written) → plan the segments of each
seed → draw the FX configurations of every set (seed × FX mode, :mod:`mixeval.evalset`) → embed
the items with every representation, from the cache when possible → DCIMIG, DCI-RF, MIG and SAP
per set and kind (cached too) → Table 1 (mean ± std over seeds), FX retrieval from the same
embeddings (``retrieval.{csv,md}``, paper protocol), the long score table, the factor tables,
Fig. 2 (t-SNE and PCA grids) and ``run.json``. The embedding step is shared with ``mixeval
retrieval`` (:mod:`mixeval.pipelines.embedded_sets`). The result files are staged in a temporary
folder and moved into ``out_dir`` only when everything succeeded.

Seeds: seed ``s`` re-draws the segments and the FX configurations and seeds the random forests,
so DCIMIG gets a spread too (``metrics_notes.md`` §2, "std over 4 seeds").
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import sklearn

from mixeval.baselines import noise_codes
from mixeval.errors import MixevalError
from mixeval.evalset import KINDS, MODES, ItemSet
from mixeval.evalset_factors import factor_table, item_factors
from mixeval.metrics.disentangle import dci, dcimig, mig, sap
from mixeval.metrics.forest_grid import BACKENDS, resolve_backend
from mixfx.io.paths import check_output_dir
from mixeval.outputs import locks_output, staged_outputs
from mixeval.pipelines.embedded_sets import EmbedSettings, EvaluationResult, case_name, embed_item_sets, item_codes, per_seed_means
from mixeval.pipelines.retrieval import retrieval_note, retrieval_scores, write_retrieval_table
from mixeval.plots.tsne import Panel, save_figure, scatter_grid
from mixeval.tables.table1 import table1_frame, write_table1
from mixfx import STEMS
from mixfx.io.atomic import atomic_write
from mixfx.io.hashing import json_sha256
from mixfx.progress import Progress, progress_reporter

logger = logging.getLogger(__name__)

__all__ = ["DCI_GRIDS", "DisentangleConfig", "DisentangleResult", "run_disentangle"]

DCI_GRIDS = {
    "reference": dict(max_depths=(8, 16, 32, 64, 128), max_features=(0.2, 0.4, 0.8, 1.0), n_splits=10),
    "small": dict(max_depths=(8, 32), max_features=(0.2, 0.8), n_splits=5),
    "cpu": dict(max_depths=(8, 32), max_features=(0.2,), n_splits=3),
    "tiny": dict(max_depths=(8,), max_features=(0.2,), n_splits=0),
}
"""Random-forest grids of DCI-RF: the reference's 5 × 4 grid with 10-fold CV (201 fits per factor),
a 2 × 2 grid with 5 folds (21 fits), the ``small`` recipe's 2 × 1 grid with 3 folds (7 fits), one fixed forest without CV (1 fit; same D, C, I as CV on it)."""
METRICS_VERSION = "1"


@dataclass(frozen=True)
class DisentangleConfig(EmbedSettings):
    """Settings of :func:`run_disentangle` (defaults: the paper's sizes and the reference DCI grid).

    Attributes:
        evalset, seeds, baselines, ideal, noise_dim, random_seed, batch_size, device: the embedding
            step's (:class:`~mixeval.pipelines.embedded_sets.EmbedSettings`); seed ``s`` also seeds the forests.
        dci_grid: key of :data:`DCI_GRIDS`.
        dci_trees: trees per forest (reference: 10).
        dci_backend: forests of :func:`~mixeval.metrics.disentangle.dci`: ``"auto"`` (numba when it
            imports), ``"numba"`` or ``"sklearn"`` (same law, different random draws; cached metrics
            remember which one made them).
        nb_bins: DCIMIG / MIG bins (reference: 10).
        n_jobs: parallel forest fits (-1: all cores); None: all cores when a forest has enough work
            (items × code size ≥ 20 000), else 1 (tiny fits are slower in threads).
        tsne_single: single-FX panels coloured by ``"effect"``, or one effect's items by configuration.
        figures: draw Fig. 2.
    """

    dci_grid: str = "reference"
    dci_trees: int = 10
    dci_backend: str = "auto"
    nb_bins: int = 10
    n_jobs: int | None = None
    tsne_single: str = "effect"
    figures: bool = True

    def _checks(self) -> list[tuple[bool, str]]:
        return super()._checks() + [
            (self.dci_grid in DCI_GRIDS, f"dci_grid: expected one of {', '.join(DCI_GRIDS)}, got {self.dci_grid!r}"),
            (self.dci_trees >= 1, f"dci_trees: expected ≥ 1, got {self.dci_trees}"),
            (self.dci_backend in BACKENDS,
             f"dci_backend: expected one of {', '.join(BACKENDS)}, got {self.dci_backend!r}"),
            (self.nb_bins >= 2, f"nb_bins: expected ≥ 2, got {self.nb_bins}"),
            (self.tsne_single == "effect" or self.tsne_single in self.evalset.single_fx,
             f"tsne_single: expected 'effect' or one of the single effects {', '.join(self.evalset.single_fx)}, got {self.tsne_single!r}"),
            (bool(self.evalset.single_fx), "single_fx: at least one effect is needed for the single-FX cases"),
        ]

    @classmethod
    def quick(cls, **changes) -> "DisentangleConfig":
        """Smoke-test sizes: 2 segments × 10 configurations of 1 s, 2 seeds, one fixed 3-tree forest (no CV)."""
        return super().quick(**{"dci_grid": "tiny", "dci_trees": 3, **changes})

    def metric_settings(self) -> dict:
        return {"grid": DCI_GRIDS[self.dci_grid], "trees": self.dci_trees, "nb_bins": self.nb_bins,
                "forests": resolve_backend(self.dci_backend),
                "categorical": self.evalset.categorical, "version": METRICS_VERSION}


@dataclass
class DisentangleResult(EvaluationResult):
    """What :func:`run_disentangle` produced: Table 1 (``table``) and the long ``scores``."""


def _compute_metrics(factors, codes: np.ndarray, cfg: DisentangleConfig, seed: int) -> dict[str, float]:
    grid = dict(DCI_GRIDS[cfg.dci_grid])
    if grid["n_splits"]:
        grid["n_splits"] = min(grid["n_splits"], codes.shape[0])
    # inputs are validated by the metrics; sklearn's per-fit parameter checks cost ~30 % of a small forest
    with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        warnings.simplefilter("ignore", RuntimeWarning)  # D is undefined (NaN) with one factor
        n_jobs = cfg.n_jobs if cfg.n_jobs is not None else (-1 if codes.shape[0] * codes.shape[1] >= 20_000 else 1)
        r = dci(factors.matrix, codes, seed=seed, n_jobs=n_jobs, n_estimators=cfg.dci_trees,
                backend=cfg.dci_backend, **grid)
        return {
            "dcimig": dcimig(factors.matrix, codes, nb_bins=cfg.nb_bins),
            "dci_disentanglement": r.disentanglement, "dci_completeness": r.completeness,
            "dci_informativeness": r.informativeness, "dci_informativeness_cv": r.informativeness_cv,
            "mig": mig(factors.matrix, codes, nb_bins=cfg.nb_bins), "sap": sap(factors.matrix, codes),
            "n_factors": float(factors.matrix.shape[1]),
        }


@locks_output
def run_disentangle(
    encoders: Sequence[str | os.PathLike],
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] = (),
    config: DisentangleConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    ir_dir: str | os.PathLike | None = None,
    progress: Progress = False,
) -> DisentangleResult:
    """Evaluate the disentanglement of FX encoders (Koo et al. §3.3): Table 1 and Fig. 2.

    Args:
        encoders: FXencoder checkpoints (this project's or official files).
        data: dataset in the MUSDB18-HQ layout (FX-normalized for the paper's protocol).
        out_dir: results folder: ``table1.{csv,md,tex}``, ``retrieval.{csv,md}`` (paper protocol only,
            :mod:`mixeval.pipelines.retrieval`), ``scores.csv``, ``factors/``,
            ``fig2_tsne.{png,pdf}``, ``fig2_pca.{png,pdf}``, ``run.json``.
        labels: row labels of the encoders (default: checkpoint metadata, else file names).
        config: settings (default :class:`DisentangleConfig`, the paper's sizes).
        cache_dir: embedding / metric cache (default ``out_dir/cache``).
        ir_dir: impulse responses for the reverb (default: the built-in synthetic bank).
        progress: ``True`` for tqdm bars on stderr, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, stage)``: ``"embed"`` in items, then ``"metrics"`` in (set, kind) pairs.

    Returns:
        :class:`DisentangleResult`.

    Raises:
        MixevalError / MixfxError: bad checkpoints, dataset without the split, too few songs, bad
            settings — before any file is written.
    """
    cfg = config or DisentangleConfig()
    out_dir = check_output_dir(out_dir, option="--out")
    if cache_dir is not None:
        check_output_dir(cache_dir, option="--cache-dir")
    ev = cfg.evalset
    times = {"start": time.perf_counter()}
    out_dir = Path(out_dir)
    embedded = embed_item_sets(encoders, data, labels=labels, settings=cfg.embed_settings(),
                               cache_dir=cache_dir if cache_dir is not None else out_dir / "cache", ir_dir=ir_dir,
                               figure_sets=cfg.figures, progress=progress)
    reps, sets, fig_sets, emb, cache = embedded.reps, embedded.sets, embedded.fig_sets, embedded.emb, embedded.cache
    notes, normalized, fingerprint = embedded.notes, embedded.normalized, embedded.fingerprint
    times.update(embedded.times)
    report = progress_reporter(progress, unit="set")

    t0 = time.perf_counter()
    settings = cfg.metric_settings()
    tasks = [(r, s) for r in reps for s in sets.values()]
    grid = DCI_GRIDS[cfg.dci_grid]
    per_factor = len(grid["max_depths"]) * len(grid["max_features"]) * grid["n_splits"] + 1
    n_factors = sum(item_factors(s, k, categorical=ev.categorical).matrix.shape[1] for s in sets.values() for k in KINDS)
    logger.info("metrics: %d representations × %d factor columns → up to %d random-forest fits (cached ones skipped)",
                len(reps), n_factors, len(reps) * n_factors * per_factor)
    total, done = len(tasks) * len(KINDS), 0
    report(done, total, "metrics")
    rows = []
    for r, s in tasks:
        key = json_sha256({"rep": r.key, "set": s.key, "settings": settings})
        results = cache.load_json("metrics", key)
        if results is None:
            results = {}
            for kind in KINDS:
                factors = item_factors(s, kind, categorical=ev.categorical)
                try:
                    results[kind] = _compute_metrics(factors, item_codes(r, s, kind, factors.matrix, emb), cfg, s.seed)
                except MixevalError as exc:
                    raise MixevalError(f"{r.label}, seed {s.seed}, {s.mode} FX, {kind}: {exc}") from None
                done += 1
                report(done, total, "metrics")
            cache.save_json("metrics", key, results)
        else:
            done += len(KINDS)
            report(done, total, "metrics")
        for kind, res in results.items():
            subset = kind if s.mode == "full" else f"{s.mode}/{kind}"
            rows += [dict(label=r.label, type=r.type, dim=r.dim, case=case_name(s.mode, kind), subset=subset, seed=s.seed,
                          metric=metric, value=value) for metric, value in res.items()]
    report.close()
    times["metrics"] = time.perf_counter() - t0
    detail = pd.DataFrame(rows)
    per_seed = per_seed_means(detail)
    table = table1_frame(per_seed, order=[r.label for r in reps])
    retrieval = None  # FX retrieval: undefined under iid; an extra that never fails Table 1
    if ev.protocol == "paper":
        try:
            retrieval = retrieval_scores(reps, sets, emb)
        except MixevalError as exc:
            notes.append(f"retrieval.csv not written: {exc}")
            logger.warning(notes[-1])

    t0 = time.perf_counter()
    files, markdown = _write_outputs(out_dir, cfg, reps, sets, fig_sets, emb, table, detail, notes, normalized, fingerprint,
                                     {k: round(v, 3) for k, v in times.items() if k != "start"}, retrieval)
    times["write"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - times.pop("start")
    logger.info("disentangle: %.1f s (embed %.1f s, metrics %.1f s); cache %d hits, %d misses",
                times["total"], times["embed"], times["metrics"], cache.hits, cache.misses)
    return DisentangleResult(out_dir, files, table, detail, reps, times, cache.hits, cache.misses, notes, markdown)


def _note(cfg: DisentangleConfig, normalized: bool) -> str:
    ev = cfg.evalset
    proto = ("paper (each configuration shared by all segments)" if ev.protocol == "paper"
             else "iid (one configuration per item)")
    grid = DCI_GRIDS[cfg.dci_grid]
    return (f"Protocol: {proto}; {ev.segments} segments × {ev.configs} FX configurations = {ev.n_items} items per set, "
            f"{ev.seconds:.2f} s, split '{ev.split}'{'' if normalized else ' (not FX-normalized)'}. "
            f"Mean ± std (ddof=0) over {cfg.seeds} seed(s); DCI-RF grid '{cfg.dci_grid}' "
            f"({len(grid['max_depths'])}×{len(grid['max_features'])}, {grid['n_splits'] or 'no'} CV folds, {cfg.dci_trees} trees). "
            "Bold: best per column (the ideal reference row excluded). 'pure noise' is the chance floor: "
            "DCI RF Expl is an in-sample score and is high even for noise.")


def _write_outputs(out_dir: Path, cfg, reps, sets, fig_sets, emb, table, detail, notes, normalized, fingerprint, times,
                   retrieval: pd.DataFrame | None) -> tuple[list[Path], str]:
    ev = cfg.evalset
    with staged_outputs(out_dir, replace_folders=("factors",), prefix=".disentangle.") as staged:
        staging = staged.folder
        write_table1(table, staging / "table1", note=_note(cfg, normalized))
        markdown = (staging / "table1.md").read_text(encoding="utf-8")
        if retrieval is not None:
            write_retrieval_table(retrieval, staging / "retrieval", note=retrieval_note(ev, cfg.seeds, normalized),
                                  formats=("csv", "md"))
        with atomic_write(staging / "scores.csv", "w", encoding="utf-8", newline="") as f:
            detail.to_csv(f, index=False, lineterminator="\n")
        columns = {}
        for (seed, mode), s in sets.items():
            with atomic_write(staging / "factors" / f"seed{seed}_{mode}.csv", "w", encoding="utf-8", newline="") as f:
                factor_table(s, categorical=ev.categorical, sample_rate=ev.sample_rate).to_csv(f, index=False, lineterminator="\n")
            if seed == 0:
                for kind in KINDS:
                    fs = item_factors(s, kind, categorical=ev.categorical)
                    columns[f"{mode}/{kind}"] = {"used": fs.names, "dropped": fs.dropped}
        specs = {sp.key: {"low": sp.low, "high": sp.high, "neutral": sp.neutral, "kind": sp.kind, "unit": sp.unit}
                 for sp in next(iter(sets.values())).fx[STEMS[0]].specs}
        with atomic_write(staging / "factors" / "columns.json", "w", encoding="utf-8") as f:
            json.dump({"categorical": ev.categorical, "parameters": specs,
                       "normalization": "value → (value − low) / (high − low); neutral value when the effect is off",
                       "sets_seed0": columns}, f, indent=1)
        if cfg.figures:
            _figures(staging, cfg, reps, fig_sets, emb)
        run = {"config": cfg.to_dict(), "representations": [r.to_dict() for r in reps], "notes": notes,
               "fx_normalized": normalized, "fingerprint": fingerprint, "timings_s": times}
        with atomic_write(staging / "run.json", "w", encoding="utf-8") as f:
            json.dump(run, f, indent=1, default=str)
    return staged.files, markdown


def _figures(folder: Path, cfg: DisentangleConfig, reps, fig_sets, emb) -> None:
    ev = cfg.evalset
    singles = [m for m in ev.modes if m != "full"]
    mix = KINDS.index("mixture")
    full = fig_sets["full"]
    rows = []
    for r in reps:
        if r.type == "ideal":
            continue

        def codes(s: ItemSet, r=r) -> np.ndarray:
            if r.type == "noise":
                return noise_codes(len(s), r.dim, rng=np.random.default_rng([MODES.index(s.mode), 11]))
            return emb[(r.key, s.key)][mix]

        left = Panel(codes(full), full.config_id)
        if cfg.tsne_single == "effect":
            right = Panel(np.concatenate([codes(fig_sets[m]) for m in singles]),
                          np.concatenate([[m] * len(fig_sets[m]) for m in singles]), legend=True)
        else:
            s = fig_sets[cfg.tsne_single]
            right = Panel(codes(s), s.config_id)
        rows.append((r.label, [left, right]))
    single_title = "single FX (colour: effect)" if cfg.tsne_single == "effect" else f"{cfg.tsne_single} only (colour: configuration)"
    columns = ["multitrack, full FX (colour: configuration)", f"multitrack, {single_title}"]
    for method in ("tsne", "pca"):
        fig = scatter_grid(rows, columns, method=method, seed=0)
        save_figure(fig, folder / f"fig2_{method}")
