"""Deep models share parameters for real; ensembles never learn from a prediction that saw the
label; vote conflicts follow the policy; the guard rolls a model back to its best state."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble import Average, Ensemble, Hedge, Stacking, Vote
from learners.checks import stream
from learners.guard import OverfitGuard
from learners.registry import build
from learners.state import copy_state
from streams.contracts.events import TrainingExample
from streams.training.model_set import ModelSet

X, Y = stream(2000, seed=5)


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
