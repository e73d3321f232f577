"""Deep models share parameters for real; ensembles never learn from a prediction that saw the
label; vote conflicts follow the policy; the guard rolls a model back to its best state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble import Average, Ensemble, Hedge, Stacking, Vote
from learners.checks import stream
from learners.deep.shared import HEADS, SharedDeepCTR
from learners.guard import OverfitGuard
from learners.registry import build
from learners.state import copy_state
from streams.contracts.events import TrainingExample
from streams.training.model_set import ModelSet

X, Y = stream(2000, seed=5)


def small_deep(**kw) -> SharedDeepCTR:
    return SharedDeepCTR(buckets=4096, dim=8, hidden=(16,), batch_size=64, device="cpu",
                         seed=3, **kw)


def test_one_table_many_heads_and_every_head_reaches_it():
    m = small_deep()
    m.progressive_outputs(X[:200], Y[:200])
    tables = {id(h.shared) for h in m.head_modules}
    assert tables == {id(m.shared)}  # one table object, referenced by every head
    idx = torch.from_numpy(m.hasher.transform(X[:32]))
    for head in m.head_modules:
        m.shared.zero_grad(set_to_none=True)
        head(idx).sum().backward()
        g = m.shared.emb.weight.grad
        assert g is not None and g.coalesce().values().abs().sum() > 0


def test_deep_runs_on_cpu_and_switches_phase():
    m = small_deep(switch_after=1000)
    assert m.phase == 1
    outs = [m.progressive_outputs(X[i:i + 250], Y[i:i + 250]) for i in range(0, 2000, 250)]
    assert m.phase == 2 and m._dev == "cpu"
    for o in outs:
        assert set(o) == {*HEADS, "deep_joint"}
        assert all(np.all((p >= 0) & (p <= 1)) for p in o.values())


def test_small_batches_wait_instead_of_being_dropped():
    m = small_deep()
    m.progressive_outputs(X[:40], Y[:40])  # less than one mini-batch of 64
    assert m.examples_trained == 0 and sum(len(a) for a in m._pending_y) == 40
    m.progressive_outputs(X[40:100], Y[40:100])
    assert m.examples_trained == 64 and sum(len(a) for a in m._pending_y) == 36


def test_deep_state_round_trip():
    m = small_deep(switch_after=500)
    for i in range(0, 1000, 200):
        m.progressive_outputs(X[i:i + 200], Y[i:i + 200])
    again = copy_state(m)
    a, b = m.predict_outputs(X[1000:1100]), again.predict_outputs(X[1000:1100])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5)
    assert again.phase == m.phase == 2
    np.testing.assert_allclose(m.progressive_outputs(X[1100:1300], Y[1100:1300])["deepfm"],
                               again.progressive_outputs(X[1100:1300], Y[1100:1300])["deepfm"],
                               rtol=1e-4)


def test_stacking_never_sees_a_label_before_predicting():
    rng = np.random.default_rng(0)
    P = rng.random((300, 3))
    y = (rng.random(300) < 0.5).astype(float)
    s = Stacking()
    out = s.combine_progressive(P, y)
    # changing the label of example i changes nothing at or before i
    y2 = y.copy()
    y2[150] = 1 - y2[150]
    out2 = Stacking().combine_progressive(P, y2)
    np.testing.assert_array_equal(out[:151], out2[:151])
    assert not np.allclose(out[151:], out2[151:])


def test_ensemble_is_a_learner_and_members_learn_once():
    ens = Ensemble(build(["ftrl", "river_logreg"]), Hedge())
    p = ens.progressive_many(X[:500], Y[:500])
    assert p.shape == (500,) and set(ens.last_members) == {"ftrl", "river_logreg"}
    alone = build(["ftrl"])["ftrl"]
    np.testing.assert_allclose(ens.last_members["ftrl"], alone.progressive_many(X[:500], Y[:500]))


@pytest.mark.parametrize("policy,expected", [("abstain", 0.5), ("average", 0.55),
                                             ("best", 0.9)])
def test_vote_conflicts_follow_the_policy(policy, expected):
    v = Vote(threshold=0.75, policy=policy)
    # teach it that member 0 is the good one
    for _ in range(50):
        v.learn_one(np.array([0.9, 0.1, 0.3, 0.9]), 1.0)
    conflict = np.array([0.9, 0.2, 0.3, 0.8])  # 2 click, 2 no click
    assert v.combine_one(conflict) == pytest.approx(expected)
    assert v.conflicts == 1
    agree = np.array([0.9, 0.8, 0.7, 0.4])  # 3 of 4 = 0.75: settled by the click side
    assert v.combine_one(agree) == pytest.approx(0.8)


def test_vote_rejects_bad_config():
    with pytest.raises(ValueError):
        Vote(threshold=0.4)
    with pytest.raises(ValueError):
        Vote(policy="coin")


def test_average_and_weighted_basics():
    P = np.array([[0.2, 0.8]])
    assert Average().combine_one(P[0]) == pytest.approx(0.5)
    assert Hedge().combine_one(P[0]) == pytest.approx(0.5)


def test_guard_rolls_back_to_the_best_state():
    ms = ModelSet("t", build(["ftrl"]), holdout_fraction=0.5,
                  guard=OverfitGuard(gap=0.0, patience=1, tolerance=0.0, min_holdout=10),
                  rollback=True)
    exs = [TrainingExample(f"e{i}", float(i), "t", X[i], Y[i]) for i in range(600)]
    ms.process(exs[:300])
    assert ms.check_guard() == []  # first check: a new best, remembered
    best = copy_state(ms.models["ftrl"])
    # now the stream turns: the labels flip, holdout loss gets worse than its best
    flipped = [TrainingExample(e.id + "f", e.event_time, "t", e.features, 1 - e.label)
               for e in exs[300:]]
    ms.process(flipped)
    alerts = ms.check_guard()
    assert alerts and alerts[0]["model"] == "ftrl" and alerts[0]["rolled_back"]
    restored = ms.models["ftrl"]
    np.testing.assert_array_equal(restored.z, best.z)


@pytest.mark.parametrize("make", [Average, Hedge, Stacking, lambda: Vote(0.6, "weighted")])
def test_serving_combine_matches_one_by_one(make):
    rng = np.random.default_rng(4)
    P = rng.random((400, 4))
    y = (rng.random(400) < 0.5).astype(float)
    c = make()
    c.combine_progressive(P[:300], y[:300])
    np.testing.assert_allclose(c.combine_many(P[300:]),
                               [c.combine_one(row) for row in P[300:]])
