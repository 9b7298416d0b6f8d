"""The disentanglement evaluation set: segments, FX configurations, protocols, factors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixeval.errors import MixevalError
from mixeval.evalset import (
    KINDS, EvalSetConfig, Segment, load_segments, plan_segments, render_items, sample_item_set,
)
from mixeval.evalset_factors import factor_table, item_factors
from mixeval.metrics.disentangle import dci, dcimig
from mixfx import STEMS
from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import synthetic_ir_bank
from mixfx.fx.params import FX_NAMES


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def chain() -> FXManipulator:
    """The chain with two short synthetic IRs (the default bank takes seconds to build)."""
    return FXManipulator(ir_bank=synthetic_ir_bank(per_group=1, groups_s=((0.2, 0.3), (0.5, 0.6))))


def fake_segments(n: int) -> list[Segment]:
    return [Segment(f"song{i}", i, 0) for i in range(n)]


def test_config_validation():
    with pytest.raises(MixevalError, match="protocol"):
        EvalSetConfig(protocol="random")
    with pytest.raises(MixevalError, match="configs"):
        EvalSetConfig(configs=1)
    with pytest.raises(MixevalError, match="unknown effect 'delay'"):
        EvalSetConfig(single_fx=("gain", "delay"))
    assert EvalSetConfig(single_fx=("gain", "eq")).modes == ("full", "eq", "gain")
    assert EvalSetConfig().segment_samples == 2**19 and EvalSetConfig().n_items == 250


def test_paper_protocol_shares_configurations_iid_does_not(chain):
    ev = EvalSetConfig(segments=5, configs=4)
    segs = fake_segments(5)
    paper = sample_item_set(chain, segs, ev, seed=0, mode="full", protocol="paper")
    iid = sample_item_set(chain, segs, ev, seed=0, mode="full", protocol="iid")
    assert len(paper) == len(iid) == 20
    # configuration-major order: item i = segment i % 5 under configuration i // 5
    np.testing.assert_array_equal(paper.content, np.arange(20) % 5)
    np.testing.assert_array_equal(paper.config_id, np.arange(20) // 5)
    for stem in STEMS:
        f = paper.fx[stem].factor_matrix().numpy()
        for k in range(4):
            block = f[paper.config_id == k]
            assert np.all(block == block[0])  # one configuration for all five segments
        assert len(np.unique(f, axis=0)) == 4
        assert len(np.unique(iid.fx[stem].factor_matrix().numpy(), axis=0)) == 20
    # each stem has its own configurations (official generator: one chain per instrument)
    assert not np.array_equal(paper.fx["drums"].factor_matrix().numpy(), paper.fx["vocals"].factor_matrix().numpy())


def test_item_sets_are_seeded_and_keyed(chain):
    ev = EvalSetConfig(segments=3, configs=2)
    segs = fake_segments(3)
    a = sample_item_set(chain, segs, ev, seed=1, mode="gain")
    b = sample_item_set(chain, segs, ev, seed=1, mode="gain")
    c = sample_item_set(chain, segs, ev, seed=2, mode="gain")
    assert a.key == b.key and a.key != c.key
    assert torch.equal(a.fx["bass"].values["gain.gain_db"], b.fx["bass"].values["gain.gain_db"])
    # a subset of single effects draws the same values for the effects it keeps
    small = EvalSetConfig(segments=3, configs=2, single_fx=("gain",))
    d = sample_item_set(chain, segs, small, seed=1, mode="gain")
    assert torch.equal(a.fx["bass"].values["gain.gain_db"], d.fx["bass"].values["gain.gain_db"])
    assert a.key != sample_item_set(chain, segs, ev, seed=1, mode="gain", fingerprint="other data").key


def test_factor_selection_rules(chain):
    ev = EvalSetConfig(segments=10, configs=10)
    segs = fake_segments(10)
    full = sample_item_set(chain, segs, ev, seed=0, mode="full", protocol="iid")
    drums = item_factors(full, "drums")
    assert "gain.applied" in drums.names and "order.eq_first" in drums.names
    assert drums.dropped["reverb.dry_weight"].startswith("unused")  # the drum routing ignores it
    assert drums.dropped["pan.law"].startswith("categorical") and drums.dropped["compressor.knee_db"] == "constant"
    assert "reverb.dry_weight" in item_factors(full, "vocals").names
    # neutral values where an effect is off: EQ gain 0 dB → 0.5 of the [-15, 15] dB range
    cfg = full.fx["drums"]
    off = ~cfg.applied["eq"].numpy()
    assert off.any()
    col = drums.matrix[:, drums.names.index("eq.peak1_gain_db")]
    np.testing.assert_allclose(col[off], 0.5)
    raw = cfg.values["eq.peak1_gain_db"].numpy()[~off]
    np.testing.assert_allclose(col[~off], (raw + 15) / 30, atol=1e-6)
    # one-hot categorical factors: one indicator per value, one active per row
    onehot = item_factors(full, "vocals", categorical="onehot")
    law = [n for n in onehot.names if n.startswith("pan.law=")]
    assert law and np.all(onehot.matrix[:, [onehot.names.index(n) for n in law]].sum(1) <= 1)
    # multitrack = the four stems side by side, prefixed
    mix = item_factors(full, "mixture")
    assert mix.matrix.shape[1] == sum(item_factors(full, s).matrix.shape[1] for s in STEMS)
    assert mix.names[0].startswith("drums/")
    # single FX: that effect's parameters only
    pan = sample_item_set(chain, segs, ev, seed=0, mode="pan")
    assert item_factors(pan, "bass").names == ["pan.pan"]
    gain = sample_item_set(chain, segs, ev, seed=0, mode="gain")
    assert item_factors(gain, "mixture").names == [f"{s}/gain.{p}" for s in STEMS for p in ("gain_db", "invert")]
    table = factor_table(gain)
    assert len(table) == 100 and {"song", "configuration", "vocals/gain.gain_db"} <= set(table.columns)


def test_ideal_code_under_each_protocol(chain):
    """Codes equal to the factors: what a perfect code can score under each protocol (25 × 10 items).

    Under the paper's protocol every factor is a function of the configuration id (10 values), so
    every code has nearly the same information about every factor and DCIMIG collapses (≈ 0.05
    multitrack, ≈ 0.11 single stem); with one configuration per item (iid) it is ≈ 0.8. DCI RF
    Expl of the ideal code is 1 under both protocols.
    """
    ev = EvalSetConfig()
    segs = fake_segments(25)
    scores = {}
    for protocol in ("paper", "iid"):
        s = sample_item_set(chain, segs, ev, seed=0, mode="full", protocol=protocol)
        for kind in ("vocals", "mixture"):
            f = item_factors(s, kind).matrix
            scores[protocol, kind] = dcimig(f, f)
        f = item_factors(s, "vocals").matrix[:, :6]
        expl = dci(f, f, max_depths=(8,), max_features=(1.0,), n_splits=0, n_jobs=1).informativeness
        assert expl > 0.99
    for kind in ("vocals", "mixture"):
        assert scores["iid", kind] > 0.75
        assert scores["paper", kind] < 0.2
        assert scores["iid", kind] - scores["paper", kind] > 0.6


def test_plan_render_and_mixture(synth_root, chain):
    data = MultitrackSegments(synth_root, "test")
    ev = EvalSetConfig(segments=3, configs=2, seconds=0.5, segments_per_song=2)
    plan = plan_segments(data, ev, seed=0)
    assert plan == plan_segments(data, ev, seed=0) and len(plan) == 3
    assert max(sum(p.song == q.song for q in plan) for p in plan) <= 2
    with pytest.raises(MixevalError, match="segments"):
        plan_segments(data, EvalSetConfig(segments=3, configs=2, seconds=0.5), seed=0)  # 2 test songs
    audio = load_segments(data, plan, ev.segment_samples)
    assert audio["vocals"].shape == (3, 2, ev.segment_samples)
    items = sample_item_set(chain, plan, ev, seed=0, mode="full")
    batches = list(render_items(items, audio, chain, batch_size=4))
    assert [len(i) for i, _ in batches] == [4, 2]
    idx, out = batches[1]
    assert set(out) == set(KINDS)
    torch.testing.assert_close(out["mixture"], sum(out[s] for s in STEMS))
    # an item is its segment processed by its own configuration
    i = int(idx[0])
    ref = chain.apply(audio["bass"][items.content[i]][None], items.fx["bass"].select([i]))
    torch.testing.assert_close(out["bass"][:1], ref, atol=1e-5, rtol=1e-4)
    assert all(fx in FX_NAMES for fx in ev.single_fx)
