"""The verdict table: does a run show that the models learn? One line per claim, with the numbers.

The claims (``mixeval reproduce`` prints them in ``summary.md``; thresholds are fixed here, never
tuned to a run):

1. **Table 1** — the FXencoder under test (default Φp.s.) beats each rival representation (random-init
   encoder, hand-crafted features, pure noise) on every cell: 4 cases × {DCIMIG, DCI RF Expl
   (in-sample, the paper's), held-out DCI RF Expl (``dci_informativeness_cv``, 0 for noise)}, by more
   than ``sigmas`` seed standard deviations: ``mean_model − mean_rival > sigmas · max(sd_model,
   sd_rival)`` with sample standard deviations (``ddof=1``) over the evaluation seeds. A single seed
   has no spread, so the claim cannot be decided (``holds`` is None).
2. **Retrieval** — FX retrieval far above chance: in every case the model's R@1 is at least
   ``retrieval_factor`` × the analytic chance R@1 *and* its MRR exceeds pure noise's by more than
   ``sigmas`` seed standard deviations (same rule as 1).
3. **Table 2** — Ψ with the model beats ``Input`` on every column in both cases (mean lower and the
   paired Wilcoxon test significant after Bonferroni, the table's ``beats_input``), and beats the
   DSP baseline on both L_MSS columns in both cases (lower mean).
4. **Orderings** (reported, never required): Φp.s. ≥ Φnorm ≥ Φ∅ per Table 1 cell and per Table 2
   column (lower is better there); the line counts the cells where each step of the ordering holds.

Inputs are the long frames the pipelines already write: per-seed Table 1 scores (``label, case,
seed, metric, value``, averaged over the case's subsets), retrieval per-seed scores (same columns) and
Table 2's ``table2_long.csv`` (``row, case, column, mean, …, beats_input``). Pure pandas, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "TABLE1_CELLS", "Verdict", "ordering_verdicts", "retrieval_verdict", "table1_verdicts", "table2_verdicts",
    "verdicts_markdown",
]

CASES = ("multitrack_full", "stem_full", "multitrack_single", "stem_single")
TABLE1_METRICS = {"dcimig": "DCIMIG", "dci_informativeness": "Expl", "dci_informativeness_cv": "held-out Expl"}
TABLE1_CELLS = tuple((c, m) for c in CASES for m in TABLE1_METRICS)
"""The 12 cells claim 1 looks at: 4 cases × (DCIMIG, in-sample Expl, held-out Expl)."""
_SHORT_CASE = {"multitrack_full": "mt/full", "stem_full": "stem/full", "multitrack_single": "mt/single",
               "stem_single": "stem/single"}
L_MSS = ("lmss_lr", "lmss_ms")


@dataclass(frozen=True)
class Verdict:
    """One claim: ``holds`` is True / False, or None when the inputs cannot decide it (say why in ``evidence``)."""

    claim: str
    holds: bool | None
    evidence: str

    @property
    def status(self) -> str:
        return {True: "holds", False: "does not hold", None: "undecided"}[self.holds]


def _seed_stats(frame: pd.DataFrame, label: str, case: str, metric: str) -> tuple[float, float, int]:
    v = frame.loc[(frame["label"] == label) & (frame["case"] == case) & (frame["metric"] == metric), "value"]
    v = v.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return np.nan, np.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else np.nan, int(v.size)


def _beats(m: tuple[float, float, int], r: tuple[float, float, int], sigmas: float) -> bool | None:
    if m[2] < 2 or r[2] < 2:
        return None
    return bool(m[0] - r[0] > sigmas * max(m[1], r[1]))


def table1_verdicts(per_seed: pd.DataFrame, *, model: str = "Φp.s.",
                    rivals: Sequence[str] = ("random-init FXencoder", "hand-crafted features", "pure noise"),
                    sigmas: float = 2.0) -> list[Verdict]:
    """Claim 1, one verdict per rival (see the module docstring)."""
    out = []
    for rival in rivals:
        if not (per_seed["label"] == rival).any() or not (per_seed["label"] == model).any():
            out.append(Verdict(f"{model} beats {rival} on every Table 1 cell by > {sigmas:g} seed std", None,
                               f"no scores for {model if rival in set(per_seed['label']) else rival}"))
            continue
        won, lost, undecided = [], [], []
        for case, metric in TABLE1_CELLS:
            m, r = _seed_stats(per_seed, model, case, metric), _seed_stats(per_seed, rival, case, metric)
            cell = f"{_SHORT_CASE[case]} {TABLE1_METRICS[metric]} {m[0]:.3f} vs {r[0]:.3f}"
            verdict = _beats(m, r, sigmas)
            (won if verdict else undecided if verdict is None else lost).append(cell)
        holds = None if undecided else not lost
        detail = f"{len(won)}/{len(TABLE1_CELLS)} cells won"
        if lost:
            detail += "; not won: " + "; ".join(lost)
        if undecided:
            detail += f"; {len(undecided)} undecided (fewer than 2 seeds or missing)"
        out.append(Verdict(f"{model} beats {rival} on every Table 1 cell by > {sigmas:g} seed std", holds, detail))
    return out


def retrieval_verdict(per_seed: pd.DataFrame, *, model: str = "Φp.s.", noise: str = "pure noise",
                      chance: str = "chance (random ranking)", retrieval_factor: float = 3.0,
                      sigmas: float = 2.0) -> Verdict:
    """Claim 2 (see the module docstring)."""
    claim = f"FX retrieval of {model} far above chance (R@1 ≥ {retrieval_factor:g}× chance, MRR > noise + {sigmas:g} std)"
    cells, ok, undecided = [], True, False
    for case in CASES:
        r1, c1 = _seed_stats(per_seed, model, case, "R@1"), _seed_stats(per_seed, chance, case, "R@1")
        mrr, nmrr = _seed_stats(per_seed, model, case, "MRR"), _seed_stats(per_seed, noise, case, "MRR")
        if not (r1[2] and c1[2] and mrr[2] and nmrr[2]):
            undecided = True
            cells.append(f"{_SHORT_CASE[case]}: missing")
            continue
        beats_noise = _beats(mrr, nmrr, sigmas)
        undecided |= beats_noise is None
        ok &= bool(r1[0] >= retrieval_factor * c1[0]) and bool(beats_noise)
        cells.append(f"{_SHORT_CASE[case]}: R@1 {r1[0]:.3f} (chance {c1[0]:.3f}), MRR {mrr[0]:.3f} (noise {nmrr[0]:.3f})")
    return Verdict(claim, None if undecided else ok, "; ".join(cells))


def _t2(long: pd.DataFrame, row: str, case: str, column: str) -> pd.Series | None:
    hit = long[(long["row"] == row) & (long["case"] == case) & (long["column"] == column)]
    return hit.iloc[0] if len(hit) else None


def table2_verdicts(long: pd.DataFrame, *, row: str = "Ψ w/ Φp.s.", baseline: str = "DSP baseline") -> list[Verdict]:
    """Claim 3: Ψ vs Input on every column, Ψ vs the DSP baseline on L_MSS (see the module docstring)."""
    columns = list(dict.fromkeys(long["column"]))
    cases = list(dict.fromkeys(long["case"]))
    out = []
    if not (long["row"] == row).any():
        return [Verdict(f"{row} beats Input on every Table 2 column", None, f"no Table 2 row {row!r}")]
    won, lost = [], []
    for case in cases:
        for col in columns:
            m, i = _t2(long, row, case, col), _t2(long, "Input", case, col)
            if m is None or i is None:
                continue
            cell = f"{case} {col} {m['mean']:.3g} vs {i['mean']:.3g}"
            (won if bool(m["beats_input"]) else lost).append(cell)
    out.append(Verdict(f"{row} beats Input on every Table 2 column (paired Wilcoxon, Bonferroni)", not lost and bool(won),
                       f"{len(won)}/{len(won) + len(lost)} won" + ("; not won: " + "; ".join(lost) if lost else "")))
    won, lost = [], []
    for case in cases:
        for col in L_MSS:
            m, b = _t2(long, row, case, col), _t2(long, baseline, case, col)
            if m is None or b is None:
                continue
            cell = f"{case} {col} {m['mean']:.3f} vs {b['mean']:.3f}"
            (won if m["mean"] < b["mean"] else lost).append(cell)
    out.append(Verdict(f"{row} beats the {baseline} on L_MSS", (not lost and bool(won)) if (won or lost) else None,
                       "; ".join(won + [c + " (not lower)" for c in lost]) or f"no {baseline} row"))
    return out


def ordering_verdicts(per_seed: pd.DataFrame | None, table2_long: pd.DataFrame | None,
                      order: Sequence[str] = ("Φp.s.", "Φnorm", "Φ∅"), table2_prefix: str = "Ψ w/ ") -> list[Verdict]:
    """Claim 4: the paper's ordering, reported per table as the share of cells where it holds."""
    out = []
    pairs = list(zip(order[:-1], order[1:]))
    if per_seed is not None:
        counts = []
        for hi, lo in pairs:
            n = sum(_seed_stats(per_seed, hi, c, m)[0] >= _seed_stats(per_seed, lo, c, m)[0] for c, m in TABLE1_CELLS)
            counts.append(f"{hi} ≥ {lo} in {n}/{len(TABLE1_CELLS)} cells")
        full = sum(all(_seed_stats(per_seed, a, c, m)[0] >= _seed_stats(per_seed, b, c, m)[0] for a, b in pairs)
                   for c, m in TABLE1_CELLS)
        out.append(Verdict(f"Table 1 ordering {' ≥ '.join(order)} (higher is better)", full == len(TABLE1_CELLS),
                           f"whole ordering in {full}/{len(TABLE1_CELLS)} cells; " + "; ".join(counts)))
    if table2_long is not None:
        rows = [table2_prefix + o for o in order]
        cells = [(c, col) for c in dict.fromkeys(table2_long["case"]) for col in dict.fromkeys(table2_long["column"])]
        mean = {}
        for r in rows:
            for c, col in cells:
                hit = _t2(table2_long, r, c, col)
                mean[(r, c, col)] = float(hit["mean"]) if hit is not None else np.nan
        counts = []
        for hi, lo in zip(rows[:-1], rows[1:]):
            n = sum(mean[(hi, c, col)] <= mean[(lo, c, col)] for c, col in cells)
            counts.append(f"{hi} ≤ {lo} in {n}/{len(cells)} cells")
        full = sum(all(mean[(a, c, col)] <= mean[(b, c, col)] for a, b in zip(rows[:-1], rows[1:])) for c, col in cells)
        out.append(Verdict(f"Table 2 ordering {' ≥ '.join(rows)} (lower error is better)", bool(cells) and full == len(cells),
                           f"whole ordering in {full}/{len(cells)} cells; " + "; ".join(counts)))
    return out


def verdicts_markdown(verdicts: Sequence[Verdict], *, title: str = "Verdicts") -> str:
    """A Markdown table: claim, status (holds / does not hold / undecided), the numbers."""
    lines = [f"## {title}", "", "| # | claim | verdict | numbers |", "|---:|---|---|---|"]
    for i, v in enumerate(verdicts, 1):
        mark = {True: "**holds**", False: "**does not hold**", None: "undecided"}[v.holds]
        lines.append(f"| {i} | {v.claim} | {mark} | {v.evidence.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
