"""The per-example scoring of ``mixeval table2``: every row's outputs measured against gt.

:func:`measure_rows` takes each row's stem outputs ``{stem: (N, 2, T)}``, forms the two cases
(``multitrack``: the sum of the stems, ``stem``: every stem of every item) and scores each example
with :mod:`mixeval.metrics.style` (one column per :data:`COLUMNS` key; lower is better, y against gt
except ``dphi_y_ref``); the evaluator's embeddings of ref and gt are computed once and shared by
every row. :mod:`mixeval.pipelines.table2` runs the rows and assembles and writes the tables.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import torch

from mixeval.metrics import style as M
from mixeval.transfer_set import iter_batches
from mixfx import STEMS
from mixfx.progress import ProgressFn, progress_reporter

__all__ = ["CASES", "COLUMNS", "DSP", "INPUT", "ORACLE", "SEPARATED", "convert", "embed", "measure_rows", "stem_cases"]

COLUMNS = {
    "lmss_lr": "L_MSS left&right", "lmss_ms": "L_MSS mid&side", "dphi_y_ref": "λ·ΔΦ y–ref", "dphi_y_gt": "λ·ΔΦ y–gt",
    "mrstft": "MRSTFT", "rms_db": "RMS err (dB)", "crest_db": "crest err (dB)", "width": "width err",
    "imbalance": "imbalance err", "bark_db": "Bark err (dB)", "loudness_lu": "loudness err (LU)",
}
"""Column id → display name; every column is lower-is-better, y against gt except ``dphi_y_ref``."""
CASES = ("multitrack", "stem")
INPUT, ORACLE, DSP, SEPARATED = "Input", "oracle", "DSP baseline", "separated stems"


def _autocast(device: torch.device, on: bool):
    if on and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def embed(encoder, x: torch.Tensor, device, batch_size: int, autocast: bool) -> torch.Tensor:
    """``encoder`` on ``x`` ``(N, 2, T)`` in batches on ``device`` → ``(N, dim)`` float32 on CPU."""
    out = []
    for sel in iter_batches(len(x), batch_size):
        with _autocast(device, autocast):
            out.append(encoder(x[sel].to(device)).float().cpu())
    return torch.cat(out)


def convert(model, x: torch.Tensor, ref: torch.Tensor, device, batch_size: int, autocast: bool) -> torch.Tensor:
    """A :class:`~mixfx.models.style_transfer.StyleTransfer` ``x`` → the style of ``ref`` item by item, on CPU."""
    out = []
    for sel in iter_batches(len(x), batch_size):
        with _autocast(device, autocast):
            out.append(model.convert(x[sel], model.embed(ref[sel])).float().cpu())
    return torch.cat(out)


def _case_chunk(y: dict[str, torch.Tensor], case: str, sel: list[int]) -> torch.Tensor:
    """Examples ``sel`` of :func:`stem_cases` ``(y)[case]``, without forming the whole case."""
    if case == "multitrack":
        return sum(y[s][sel] for s in STEMS)
    n = len(y[STEMS[0]])
    return torch.stack([y[STEMS[j // n]][j % n] for j in sel])


def stem_cases(y: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stem outputs ``{stem: (N, 2, T)}`` → ``{"multitrack": (N, 2, T), "stem": (4N, 2, T)}``."""
    return {"multitrack": sum(y[s] for s in STEMS), "stem": torch.cat([y[s] for s in STEMS])}


CHUNK_SAMPLES = 2**19
"""Samples per example × examples measured in one pass: the spectrogram temporaries of the measures then stay
near 200 MB (≈ 400 B per sample) and in cache, where a whole case at once took 7.5 GB for 96 stems of 4 s."""


def _measures(y: torch.Tensor, gt_spectra, gt_features, e_y, e_ref, e_gt, gt: torch.Tensor) -> dict[str, np.ndarray]:
    lmss = M.lmss_terms(y, gt_spectra)
    out = {"lmss_lr": lmss["left_right"], "lmss_ms": lmss["mid_side"]}
    nan = np.full(len(y), np.nan)
    out["dphi_y_ref"] = M.embedding_distance(e_y, e_ref) if e_y is not None else nan
    out["dphi_y_gt"] = M.embedding_distance(e_y, e_gt) if e_y is not None else nan
    out["mrstft"] = M.mrstft(y, gt)
    out.update(M.audio_feature_errors(y, gt, features=gt_features))
    out["loudness_lu"] = M.loudness_error(y, gt)
    return out


def measure_rows(outputs: dict[str, dict[str, torch.Tensor]], rows: list[str], *, gt: dict[str, torch.Tensor],
                 ref: dict[str, torch.Tensor], evaluator, device, batch_size: int, autocast: bool,
                 progress: ProgressFn | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score every example of every row: the ``examples`` frame and the ΔΦ floor.

    Examples are measured a few at a time (:data:`CHUNK_SAMPLES`), every row against the same chunk of
    gt, whose spectrograms and features are computed once per chunk and shared by the rows.

    Args:
        outputs: ``{row: {stem: (N, 2, T)}}``; the ``oracle`` row (gt itself) reuses gt's embeddings.
        rows: the rows to score, in table order.
        gt, ref: the items' target and reference stems ``{stem: (N, 2, T)}``.
        evaluator: the FXencoder of the ΔΦ columns, or None (those columns are NaN).
        progress: called ``(done, total, "measures")`` in examples × rows.

    Returns:
        ``examples``: one record per row × case × example (``row, case, stem, item`` and every
        :data:`COLUMNS` key), ordered by row, case, example; ``floor``: per case, the mean
        ``ΔΦ(gt, ref)`` (empty without evaluator).
    """
    n = len(gt[STEMS[0]])
    gt_c, ref_c = stem_cases(gt), stem_cases(ref)
    none = {case: None for case in CASES}
    emb = {"ref": none, "gt": none}
    e_y = {row: none for row in rows}
    if evaluator is not None:
        emb = {k: {case: embed(evaluator, v[case], device, batch_size, autocast) for case in CASES}
               for k, v in (("ref", ref_c), ("gt", gt_c))}
        for row in rows:  # one row's cases in memory at a time; the oracle is gt itself
            if row == ORACLE:
                e_y[row] = emb["gt"]
            else:
                cases = stem_cases(outputs[row])
                e_y[row] = {c: embed(evaluator, cases[c], device, batch_size, autocast) for c in CASES}
    stem_col = {"multitrack": ["mixture"] * n, "stem": [s for s in STEMS for _ in range(n)]}
    item_col = {"multitrack": list(range(n)), "stem": list(range(n)) * len(STEMS)}
    parts: dict[tuple[str, str], list[dict[str, np.ndarray]]] = {(row, case): [] for row in rows for case in CASES}
    chunk = max(1, CHUNK_SAMPLES // gt_c[CASES[0]].shape[-1])
    total = len(rows) * sum(len(gt_c[case]) for case in CASES)
    done = 0
    report = progress_reporter(progress)
    report(0, total, "measures")
    for case in CASES:
        for sel in iter_batches(len(gt_c[case]), chunk):
            g = gt_c[case][sel]
            spectra, features = M.lmss_target(g), M.audio_features(g)
            pick = (lambda e: e[sel] if e is not None else None)
            e_ref, e_gt = pick(emb["ref"][case]), pick(emb["gt"][case])
            for row in rows:
                parts[row, case].append(_measures(_case_chunk(outputs[row], case, sel), spectra, features,
                                                  pick(e_y[row][case]), e_ref, e_gt, g))
                done += len(g)
                report(done, total, "measures")
    frames = []
    for row in rows:
        for case in CASES:
            m = {k: np.concatenate([p[k] for p in parts[row, case]]) for k in parts[row, case][0]}
            frames.append(pd.DataFrame({"row": row, "case": case, "stem": stem_col[case], "item": item_col[case], **m}))
    examples = pd.concat(frames, ignore_index=True)
    floor = {}
    if evaluator is not None:
        floor = {case: float(np.mean(M.embedding_distance(emb["gt"][case], emb["ref"][case]))) for case in CASES}
    return examples, floor
