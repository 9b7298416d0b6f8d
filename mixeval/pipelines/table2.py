"""``mixeval table2``: the objective style-transfer evaluation of Koo et al. §3.4.1 (Table 2) and more.

Steps: check every input (models, evaluator, separator, dataset, output folder) before any work →
draw the item set (:mod:`mixeval.transfer_set`) or reload it from a manifest → render x, ref and gt
→ the outputs ``y`` of every row (``Input``: x; ``oracle``: gt; the model-free ``DSP baseline``
(:mod:`mixeval.dsp_baseline`); one row per ``--model``; ``separated stems`` with a separator) →
the per-example measures (:mod:`mixeval.metrics.style`) of every row, for single stems (every stem
of every item) and multitracks (sums of the stems) → means with 95 % bootstrap CIs, Wilcoxon
signed-rank tests of every row against ``Input`` (Bonferroni over rows × columns) → ``table2.{csv,
md,tex}``, ``examples.csv``, ``items.json`` (the manifest), ``run.json``, ``fig_table2.{png,pdf}``
and, with ``save_audio``, every signal as WAV. Result files are published together at the end.

Every row shares the rendered items and the evaluator's embeddings of ``ref`` and ``gt``; the
per-example scoring is :func:`mixeval.pipelines.table2_measures.measure_rows`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from mixeval.errors import MixevalError
from mixeval.metrics import style as M
from mixeval.outputs import locks_output, software_versions, staged_outputs
from mixeval.pipelines.table2_measures import (
    CASES, COLUMNS, DSP, INPUT, ORACLE, SEPARATED, convert, measure_rows, stem_cases,
)
from mixeval.tables.table2 import paired_summary
from mixeval.transfer_set import (
    TransferSetConfig, check_songs, load_manifest, render_transfer_set,
    sample_transfer_set, save_manifest,
)
from mixfx import SAMPLE_RATE, STEMS
from mixfx import __version__ as mixfx_version
from mixfx.io.atomic import atomic_write
from mixfx.io.paths import check_output_dir
from mixfx.progress import Progress, progress_reporter

logger = logging.getLogger(__name__)

__all__ = ["COLUMNS", "ModelSpec", "Table2Config", "Table2Result", "parse_model_spec", "run_table2"]

@dataclass(frozen=True)
class ModelSpec:
    """One ``--model LABEL=ENCODER.pt,CLONER.pt`` row."""

    label: str
    encoder: Path
    cloner: Path


def parse_model_spec(text: str) -> ModelSpec:
    """``"LABEL=ENCODER.pt,CLONER.pt"`` → :class:`ModelSpec` (one-line error otherwise)."""
    label, sep, paths = text.partition("=")
    parts = [p.strip() for p in paths.split(",")]
    if not sep or not label.strip() or len(parts) != 2 or not all(parts):
        raise MixevalError(f"--model {text!r}: expected LABEL=ENCODER.pt,CLONER.pt")
    return ModelSpec(label.strip(), Path(parts[0]), Path(parts[1]))


@dataclass(frozen=True)
class Table2Config:
    """Settings of :func:`run_table2`.

    Attributes:
        evalset: the item set (:class:`mixeval.transfer_set.TransferSetConfig`).
        batch_size: items per FX / network call.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        bootstrap: bootstrap resamples of the 95 % CIs.
        alpha: significance level after Bonferroni correction.
        dsp_baseline: include the model-free DSP baseline row.
        autocast: bf16 autocast of Ψ and Φ on CUDA.
    """

    evalset: TransferSetConfig = TransferSetConfig()
    batch_size: int = 4
    device: str = "auto"
    bootstrap: int = 1000
    alpha: float = 0.05
    dsp_baseline: bool = True
    autocast: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise MixevalError(f"--batch-size: expected ≥ 1, got {self.batch_size}")
        if self.bootstrap < 100:
            raise MixevalError(f"bootstrap: expected ≥ 100 resamples, got {self.bootstrap}")
        if not 0 < self.alpha < 1:
            raise MixevalError(f"--alpha: expected in (0, 1), got {self.alpha}")

    @classmethod
    def quick(cls, **changes) -> "Table2Config":
        """CPU smoke size: 4 items of 3 s."""
        ev = changes.pop("evalset", TransferSetConfig(examples=4, seconds=3.0))
        return cls(evalset=ev, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Table2Result:
    """What :func:`run_table2` computed and wrote."""

    table: pd.DataFrame
    examples: pd.DataFrame
    markdown: str
    files: list[Path]
    notes: list[str]
    floor: dict[str, float]
    sdr: dict[str, float]
    timings: dict[str, float]
    reused: bool = False


# ----------------------------------------------------------------------------------------- checks


def _load_rows(models: Sequence[ModelSpec], device):
    from mixfx.models.loading import load_models

    labels = [m.label for m in models]
    for reserved in (INPUT, ORACLE, DSP, SEPARATED):
        if reserved in labels:
            raise MixevalError(f"--model {reserved}=...: {reserved!r} is a built-in row; choose another label")
    if len(set(labels)) != len(labels):
        raise MixevalError(f"--model: repeated label in {labels}")
    loaded = []
    for m in models:
        for p in (m.encoder, m.cloner):
            if not p.is_file():
                raise MixevalError(f"--model {m.label}: {p}: no such file")
        loaded.append((m, *load_models(m.encoder, m.cloner, device=device)))
    return loaded


def _load_evaluator(path: Path | None, loaded, device):
    from mixfx.models.loading import load_encoder

    if path is None:
        if not loaded:
            return None, None
        return loaded[0][1], f"the encoder of --model {loaded[0][0].label} ({loaded[0][0].encoder})"
    if not Path(path).is_file():
        raise MixevalError(f"--evaluator {path}: no such file")
    return load_encoder(path, map_location=device), str(path)


@locks_output
def run_table2(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    models: Sequence[ModelSpec] = (),
    evaluator: str | os.PathLike | None = None,
    separator: str | os.PathLike | None = None,
    items: str | os.PathLike | None = None,
    config: Table2Config | None = None,
    ir_dir: str | os.PathLike | None = None,
    save_audio: bool = False,
    reuse: bool = False,
    progress: Progress = False,
) -> Table2Result:
    """Table 2 of Koo et al. for the given style-transfer models, plus the model-free rows.

    Args:
        data: dataset in the MUSDB18-HQ layout (the paper: FX-normalized; its ``test`` split is used).
        out_dir: results folder (default of the CLI: ``reports/table2``).
        models: one row per (label, FXencoder, MixFXcloner); ours or official checkpoints.
        evaluator: the FXencoder of the ΔΦ columns (paper: Φp.s.); default: the first model's encoder;
            without models and evaluator the ΔΦ columns are empty.
        separator: torchaudio HDemucs state dict for the ``separated stems`` row (first model).
        items: a manifest written by an earlier run (``items.json``) to evaluate exactly those items.
        config: sizes and settings.
        ir_dir: impulse responses of the reverb (default: the built-in synthetic bank).
        save_audio: also write x, ref, gt and every row's y as WAV under ``audio/``.
        reuse: when ``out_dir`` already holds the results of identical inputs (``run.json``: the same data
            path, config, item set, IR folder, ``save_audio``, mixfx version and SHA-256 of every model,
            evaluator and separator file), return those instead of computing them again
            (``Table2Result.reused``); ``mixeval reproduce`` uses it so a resumed run skips a finished Table 2.
        progress: ``True`` for tqdm bars on stderr, or a :class:`~mixfx.progress.ProgressFn` called
            ``(done, total, stage)``: ``"DSP baseline"`` and ``"models"`` in stems, ``"measures"`` in examples × rows.

    Raises:
        MixevalError / MixfxError: any bad input, before work starts (one line each).
    """
    from mixfx.data.musdb import MultitrackSegments
    from mixfx.fx.chain import FXManipulator
    from mixfx.fx.ir import load_ir_folder
    from mixfx.io.hashing import file_sha256
    from mixfx.models.loading import resolve_device
    from mixfx.fxnorm.matching import stem_rng
    from mixfx.models.style_transfer import StyleTransfer
    from mixfx.fxnorm.dataset import NORMALIZATION_RECORD, is_fx_normalized

    cfg = config or Table2Config()
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    out_dir = Path(out_dir)
    check_output_dir(out_dir, option="--out")
    device = resolve_device(cfg.device)
    if separator is not None and not Path(separator).is_file():
        raise MixevalError(f"--separator {separator}: no such file")
    if separator is not None and not models:
        raise MixevalError("--separator needs a --model: the separated stems are converted with the first model")
    loaded = _load_rows(models, device)
    eval_encoder, eval_source = _load_evaluator(Path(evaluator) if evaluator is not None else None, loaded, device)
    sep = None
    if separator is not None:
        from mixfx.models.separation import load_separator

        sep = load_separator(separator, device=device, batch_size=cfg.batch_size)
    ev = cfg.evalset
    dataset = MultitrackSegments(data, ev.split, silence_threshold_db=ev.silence_threshold_db, min_active=ev.min_active)
    if not dataset.songs:
        raise MixevalError(f"{data}: no songs in the {ev.split!r} split")
    chain = FXManipulator(ir_bank=load_ir_folder(ir_dir) if ir_dir else None)
    if items is not None:
        tset = load_manifest(items, chain)
        ev = tset.config
        cfg = dataclasses.replace(cfg, evalset=ev)
        check_songs(tset, dataset, where=str(items))
    else:
        tset = sample_transfer_set(dataset, chain, ev)
    notes = []
    if not is_fx_normalized(data):
        notes.append(f"{data} is not FX-normalized (no {NORMALIZATION_RECORD}); the paper evaluates on the FX-normalized test split")
    if eval_encoder is None:
        notes.append("no --evaluator and no --model: the λ·ΔΦ columns are empty")
    if separator is None:
        notes.append("no --separator: the 'separated stems' row is skipped")
    inputs = {
        "config": cfg.to_dict(), "data": str(data), "evaluator": eval_source,
        "evaluator_sha256": file_sha256(evaluator) if evaluator is not None else None,
        "models": [{"label": m.label, "encoder": str(m.encoder), "cloner": str(m.cloner),
                    "encoder_sha256": file_sha256(m.encoder), "cloner_sha256": file_sha256(m.cloner)} for m, _, _ in loaded],
        "separator": str(separator) if separator else None,
        "separator_sha256": file_sha256(separator) if separator else None,
        "items_key": tset.key, "ir_dir": str(ir_dir) if ir_dir else None, "save_audio": bool(save_audio),
        "mixfx_version": mixfx_version,
    }
    if reuse:
        earlier = _earlier_result(out_dir, inputs)
        if earlier is not None:
            return earlier
    report = progress_reporter(progress, unit={"DSP baseline": "stem", "models": "stem", "measures": "example"})
    times["setup"] = time.perf_counter() - t0

    t = time.perf_counter()
    audio = render_transfer_set(tset, dataset, chain, batch_size=cfg.batch_size, device=device)
    times["render"] = time.perf_counter() - t
    x, ref, gt = audio["x"], audio["ref"], audio["gt"]
    n = len(tset)

    t = time.perf_counter()
    outputs: dict[str, dict[str, torch.Tensor]] = {INPUT: x, ORACLE: gt}
    rows = [INPUT, ORACLE]
    if cfg.dsp_baseline:
        from mixeval.dsp_baseline import match_reference_features

        report(0, n * len(STEMS), "DSP baseline")
        y = {}
        for k, stem in enumerate(STEMS):
            y[stem] = torch.stack([match_reference_features(x[stem][i], ref[stem][i], stem,
                                                            rng=stem_rng(ev.seed, f"item{i}", stem))
                                   for i in range(n)])
            report((k + 1) * n, n * len(STEMS), "DSP baseline")
        outputs[DSP] = y
        rows.append(DSP)
    times["dsp"] = time.perf_counter() - t

    t = time.perf_counter()
    transfers = {}
    report(0, len(loaded) * len(STEMS), "models")
    for k, (spec, enc, cl) in enumerate(loaded):
        st = StyleTransfer(enc, cl, None, segment=max(ev.samples, 2**19), batch_size=cfg.batch_size, device=device)
        transfers[spec.label] = st
        outputs[spec.label] = {s: convert(st, x[s], ref[s], device, cfg.batch_size, cfg.autocast) for s in STEMS}
        rows.append(spec.label)
        report((k + 1) * len(STEMS), len(loaded) * len(STEMS), "models")
    sdr: dict[str, float] = {}
    if sep is not None:
        first = loaded[0][0].label
        xs = {s: [] for s in STEMS}
        rs = {s: [] for s in STEMS}
        for i in range(n):
            sx = sep.separate(sum(x[s][i] for s in STEMS))
            sr = sep.separate(sum(ref[s][i] for s in STEMS))
            for s in STEMS:
                xs[s].append(sx[s].float().cpu())
                rs[s].append(sr[s].float().cpu())
        st = transfers[first]
        outputs[SEPARATED] = {s: convert(st, torch.stack(xs[s]), torch.stack(rs[s]), device, cfg.batch_size, cfg.autocast)
                              for s in STEMS}
        rows.append(SEPARATED)
        clean, separated = stem_cases(outputs[first]), stem_cases(outputs[SEPARATED])
        sdr = {case: float(np.mean(M.sdr_db(clean[case], separated[case]))) for case in CASES}
    times["models"] = time.perf_counter() - t

    t = time.perf_counter()
    examples, floor = measure_rows(outputs, rows, gt=gt, ref=ref, evaluator=eval_encoder, device=device,
                                   batch_size=cfg.batch_size, autocast=cfg.autocast, progress=report)
    report.close()
    summary = paired_summary(examples, rows, bootstrap=cfg.bootstrap, alpha=cfg.alpha, seed=cfg.evalset.seed)
    times["measures"] = time.perf_counter() - t

    from mixeval.tables.table2 import figure_table2, table2_markdown, table2_tex, table2_wide

    wide = table2_wide(summary, rows)
    md = table2_markdown(summary, rows, floor=floor, sdr=sdr, alpha=cfg.alpha)
    run = {
        **inputs, "notes": notes, "floor_gt_ref": floor, "sdr_db": sdr, "device": str(device),
        "versions": software_versions(), "timings_s": times,
    }
    with staged_outputs(out_dir, replace_folders=("audio",) if save_audio else (), prefix=".table2.") as staged:
        folder = staged.folder
        with atomic_write(folder / "table2.csv", "w", encoding="utf-8", newline="") as f:
            wide.to_csv(f, index=False, lineterminator="\n")
        with atomic_write(folder / "table2_long.csv", "w", encoding="utf-8", newline="") as f:
            summary.to_csv(f, index=False, lineterminator="\n")
        with atomic_write(folder / "table2.md", "w", encoding="utf-8") as f:
            f.write(md)
        with atomic_write(folder / "table2.tex", "w", encoding="utf-8") as f:
            f.write(table2_tex(summary, rows))
        with atomic_write(folder / "examples.csv", "w", encoding="utf-8", newline="") as f:
            examples.to_csv(f, index=False, lineterminator="\n")
        save_manifest(tset, folder / "items.json")
        figure_table2(examples, rows, folder / "fig_table2")
        if save_audio:
            _save_audio(folder / "audio", x, ref, gt, outputs, rows)
        times["total"] = time.perf_counter() - t0
        with atomic_write(folder / "run.json", "w", encoding="utf-8") as f:
            json.dump(run, f, indent=1, default=str)
    return Table2Result(summary, examples, md, staged.files, notes, floor, sdr, times)


RESULT_FILES = ("table2.csv", "table2_long.csv", "table2.md", "table2.tex", "examples.csv", "items.json", "run.json")


def _earlier_result(out_dir: Path, inputs: dict) -> Table2Result | None:
    """The results in ``out_dir`` when its ``run.json`` records exactly ``inputs``, else None."""
    try:
        earlier = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wanted = json.loads(json.dumps(inputs, default=str))
    if not isinstance(earlier, dict) or any(earlier.get(k) != v for k, v in wanted.items()):
        return None
    if not all((out_dir / name).is_file() for name in RESULT_FILES):
        return None
    files = [out_dir / name for name in RESULT_FILES] + sorted(out_dir.glob("fig_table2.*"))
    logger.info("table2: %s holds the results of these inputs; reused", out_dir)
    return Table2Result(pd.read_csv(out_dir / "table2_long.csv"), pd.read_csv(out_dir / "examples.csv"),
                        (out_dir / "table2.md").read_text(encoding="utf-8"), files, list(earlier.get("notes", [])),
                        dict(earlier.get("floor_gt_ref", {})), dict(earlier.get("sdr_db", {})),
                        dict(earlier.get("timings_s", {})), reused=True)


def _save_audio(folder: Path, x, ref, gt, outputs, rows) -> None:
    from mixfx.io.audio import save_audio

    signals = {"x": stem_cases(x), "ref": stem_cases(ref), "gt": stem_cases(gt)}
    signals.update({f"y_{row}": stem_cases(outputs[row]) for row in rows if row not in (INPUT, ORACLE)})
    n = len(signals["x"]["multitrack"])
    for name, cases in signals.items():
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        for i in range(n):
            save_audio(folder / f"item{i:03d}" / "mixture" / f"{safe}.wav", cases["multitrack"][i], SAMPLE_RATE)
            for k, stem in enumerate(STEMS):
                save_audio(folder / f"item{i:03d}" / stem / f"{safe}.wav", cases["stem"][k * n + i], SAMPLE_RATE)
