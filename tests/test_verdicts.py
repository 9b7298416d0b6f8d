"""The verdict table's rules on hand-built score tables (known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixeval.tables import verdicts as V

RIVALS = ("random-init FXencoder", "hand-crafted features", "pure noise")


def _table1(values: dict[str, list[float]], cells=V.TABLE1_CELLS) -> pd.DataFrame:
    """One value per seed for every cell: ``label → per-seed values`` (the same for every cell)."""
    rows = []
    for label, per_seed in values.items():
        for case, metric in cells:
            rows += [dict(label=label, type="x", dim=1, case=case, seed=s, metric=metric, value=v) for s, v in enumerate(per_seed)]
    return pd.DataFrame(rows)


def test_table1_claim_needs_a_margin_of_two_seed_stds():
    # model 0.50 ± 0.01 (sample std of [0.49, 0.50, 0.51] = 0.01)
    clear = _table1({"Φp.s.": [0.49, 0.50, 0.51], RIVALS[0]: [0.40, 0.41, 0.42], RIVALS[1]: [0.30, 0.30, 0.30],
                     RIVALS[2]: [0.0, 0.01, 0.02]})
    out = V.table1_verdicts(clear)
    assert [v.holds for v in out] == [True, True, True]
    assert "12/12 cells won" in out[0].evidence
    # a rival 0.475 ± 0.005: the difference 0.025 is above 2·0.01? no: 0.025 > 0.02 → holds; 0.485 → 0.015 < 0.02 fails
    near = _table1({"Φp.s.": [0.49, 0.50, 0.51], RIVALS[0]: [0.48, 0.485, 0.49], RIVALS[1]: [0.474, 0.475, 0.476],
                    RIVALS[2]: [0.0, 0.0, 0.0]})
    out = V.table1_verdicts(near)
    assert [v.holds for v in out] == [False, True, True]
    assert "0/12 cells won" in out[0].evidence and "not won" in out[0].evidence


def test_one_losing_cell_breaks_the_claim_and_is_named():
    df = _table1({"Φp.s.": [0.5, 0.51, 0.52], RIVALS[0]: [0.1, 0.1, 0.1], RIVALS[1]: [0.1, 0.1, 0.1], RIVALS[2]: [0.1, 0.1, 0.1]})
    hit = (df["label"] == RIVALS[1]) & (df["case"] == "stem_single") & (df["metric"] == "dci_informativeness_cv")
    df.loc[hit, "value"] = 0.9
    out = V.table1_verdicts(df)
    assert [v.holds for v in out] == [True, False, True]
    assert "stem/single held-out Expl" in out[1].evidence and "11/12" in out[1].evidence


def test_a_single_seed_cannot_decide():
    out = V.table1_verdicts(_table1({"Φp.s.": [0.9], RIVALS[0]: [0.1], RIVALS[1]: [0.1], RIVALS[2]: [0.1]}))
    assert all(v.holds is None for v in out) and all(v.status == "undecided" for v in out)


def test_missing_rows_are_undecided_not_passed():
    out = V.table1_verdicts(_table1({"Φp.s.": [0.5, 0.6]}))
    assert all(v.holds is None for v in out)


def _retrieval(model_r1, chance_r1, model_mrr, noise_mrr):
    rows = []
    for case in V.CASES:
        for s in range(3):
            rows += [dict(label="Φp.s.", case=case, seed=s, metric="R@1", value=model_r1),
                     dict(label="Φp.s.", case=case, seed=s, metric="MRR", value=model_mrr + 0.01 * s),
                     dict(label="chance (random ranking)", case=case, seed=s, metric="R@1", value=chance_r1),
                     dict(label="pure noise", case=case, seed=s, metric="MRR", value=noise_mrr + 0.01 * s)]
    return pd.DataFrame(rows)


def test_retrieval_claim():
    assert V.retrieval_verdict(_retrieval(0.6, 0.1, 0.7, 0.2)).holds is True
    assert V.retrieval_verdict(_retrieval(0.25, 0.1, 0.7, 0.2)).holds is False  # R@1 only 2.5× chance
    assert V.retrieval_verdict(_retrieval(0.6, 0.1, 0.21, 0.2)).holds is False  # MRR within noise's spread


def _table2(rows: dict[str, dict[str, float]], beats: set[str]) -> pd.DataFrame:
    out = []
    for row, cols in rows.items():
        for case in ("multitrack", "stem"):
            for col, mean in cols.items():
                out.append(dict(row=row, case=case, column=col, mean=mean, beats_input=row in beats))
    return pd.DataFrame(out)


def test_table2_claims():
    cols = {"lmss_lr": 1.0, "lmss_ms": 1.0, "rms_db": 1.0}
    good = _table2({"Input": cols, "DSP baseline": {k: 2.0 for k in cols}, "Ψ w/ Φp.s.": {k: 0.5 for k in cols}}, {"Ψ w/ Φp.s."})
    assert [v.holds for v in V.table2_verdicts(good)] == [True, True]
    not_significant = _table2({"Input": cols, "DSP baseline": {k: 0.1 for k in cols}, "Ψ w/ Φp.s.": {k: 0.5 for k in cols}}, set())
    v = V.table2_verdicts(not_significant)
    assert [x.holds for x in v] == [False, False]
    assert "0/6 won" in v[0].evidence


def test_ordering_is_reported_per_cell():
    t1 = _table1({"Φp.s.": [0.3, 0.3], "Φnorm": [0.2, 0.2], "Φ∅": [0.25, 0.25]})
    t2 = _table2({"Ψ w/ Φp.s.": {"a": 1.0}, "Ψ w/ Φnorm": {"a": 2.0}, "Ψ w/ Φ∅": {"a": 3.0}}, set())
    o1, o2 = V.ordering_verdicts(t1, t2)
    assert o1.holds is False and "Φnorm ≥ Φ∅ in 0/12" in o1.evidence and "Φp.s. ≥ Φnorm in 12/12" in o1.evidence
    assert o2.holds is True and "2/2" in o2.evidence


def test_markdown_lists_every_claim():
    md = V.verdicts_markdown([V.Verdict("a", True, "x"), V.Verdict("b", False, "y|z"), V.Verdict("c", None, "")])
    assert md.count("\n| ") == 4 and "**holds**" in md and "**does not hold**" in md and "undecided" in md
    assert "y/z" in md and np.char.count(md, "|").item() > 0
