"""FX retrieval (Recall@k, MRR): hand-worked example, perfect codes, chance level by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mixeval.errors import MixevalError
from mixeval.metrics.retrieval import first_positive_ranks, fx_retrieval, retrieval_chance


def test_hand_worked_four_items():
    # cosines: 0-1 .8, 0-2 0, 0-3 .6, 1-2 .6, 1-3 .96, 2-3 .8
    codes = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    ids = np.array(["A", "B", "A", "B"])
    # query 0: 1 (B) .8, 3 (B) .6, 2 (A) 0 → rank 3; query 1: 3 (B) .96 → 1; query 2: 3, 1, 0 → 3; query 3: 1 → 1
    np.testing.assert_array_equal(first_positive_ranks(codes, ids), [3, 1, 3, 1])
    res = fx_retrieval(codes, ids, ks=(1, 2, 3))
    assert res == pytest.approx({"R@1": 0.5, "R@2": 0.5, "R@3": 1.0, "MRR": (1 / 3 + 1 + 1 / 3 + 1) / 4})


def test_one_hot_codes_are_perfect():
    ids = np.repeat(np.arange(10), 25)  # 10 configurations × 25 contents
    codes = np.eye(10)[ids] * np.random.default_rng(0).uniform(0.5, 2.0, size=(250, 1))  # scale does not matter
    res = fx_retrieval(codes, ids)
    assert res == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MRR": 1.0}


def test_query_without_positive_is_excluded_and_all_equal_codes_score_worst():
    ids = np.array([0, 0, 1, 2])
    ranks = first_positive_ranks(np.ones((4, 3)), ids)  # all ties → counted against the query
    assert np.isnan(ranks[2]) and np.isnan(ranks[3]) and list(ranks[:2]) == [3, 3]
    assert fx_retrieval(np.ones((4, 3)), ids, ks=(1,)) == pytest.approx({"R@1": 0.0, "MRR": 1 / 3})


def _brute_force_chance(ids, ks):
    """Average over every ordering of the other items (exact expectation of a random ranking)."""
    n = len(ids)
    hits = {k: [] for k in ks}
    rr = []
    for q in range(n):
        others = [j for j in range(n) if j != q]
        if not any(ids[j] == ids[q] for j in others):
            continue
        ranks = [next(r for r, j in enumerate(perm, 1) if ids[j] == ids[q]) for perm in itertools.permutations(others)]
        for k in ks:
            hits[k].append(np.mean([r <= k for r in ranks]))
        rr.append(np.mean([1 / r for r in ranks]))
    return {**{f"R@{k}": float(np.mean(hits[k])) for k in ks}, "MRR": float(np.mean(rr))}


def test_chance_formula_matches_brute_force():
    ids = np.array([0, 0, 0, 1, 1, 2, 3])  # queries with 2, 1 and no positives
    ks = (1, 2, 5, 10)
    assert retrieval_chance(ids, ks=ks) == pytest.approx(_brute_force_chance(ids, ks))
    # one positive among 5 others: R@1 = 1/5, MRR = (1 + 1/2 + ... + 1/5) / 5
    two_each = np.repeat([0, 1, 2], 2)
    assert retrieval_chance(two_each, ks=(1,)) == pytest.approx({"R@1": 0.2, "MRR": (1 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 5})


def test_noise_codes_are_near_chance():
    rng = np.random.default_rng(1)
    ids = np.array([0, 0, 0, 1, 1, 2, 3])
    ks = (1, 2, 5)
    runs = [fx_retrieval(rng.normal(size=(7, 16)), ids, ks=ks) for _ in range(3000)]
    mean = {key: np.mean([r[key] for r in runs]) for key in runs[0]}
    assert mean == pytest.approx(_brute_force_chance(ids, ks), abs=0.02)
    # the paper's 25 × 10 set: one draw's scores vary by ≈ 0.04 (std), so average 20 draws (std ≈ 0.009)
    big = np.repeat(np.arange(10), 25)
    runs = [fx_retrieval(rng.normal(size=(250, 64)), big) for _ in range(20)]
    mean = {key: np.mean([r[key] for r in runs]) for key in runs[0]}
    assert mean == pytest.approx(retrieval_chance(big), abs=0.035)


def test_chunked_ranking_equals_one_block(monkeypatch):
    import mixeval.metrics.retrieval as retrieval

    rng = np.random.default_rng(2)
    codes, ids = rng.normal(size=(50, 4)), rng.integers(0, 6, size=50)
    whole = first_positive_ranks(codes, ids)
    monkeypatch.setattr(retrieval, "_CHUNK", 7)
    np.testing.assert_array_equal(first_positive_ranks(codes, ids), whole)


def test_bad_input_is_one_line_error():
    with pytest.raises(MixevalError, match=r"config_ids: expected shape \(3,\)"):
        fx_retrieval(np.ones((3, 2)), np.array([0, 1]))
    with pytest.raises(MixevalError, match="all-zero"):
        fx_retrieval(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0, 0]))
    with pytest.raises(MixevalError, match="ks"):
        fx_retrieval(np.eye(2), np.array([0, 0]), ks=(0,))
    with pytest.warns(UserWarning, match="undefined"):
        res = fx_retrieval(np.eye(3), np.array([0, 1, 2]), ks=(1,))
    assert np.isnan(res["R@1"]) and np.isnan(res["MRR"])
