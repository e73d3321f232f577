"""One check suite, parametrised over every learner: clone, state round trip, unseen and missing
features, determinism under a seed, probabilities in [0, 1], predict-before-learn."""

from __future__ import annotations

import random

import numpy as np
import pytest

from learners.base import Learner
from learners.hashed import HashedLearner
from learners.metrics import log_loss
from learners.registry import ALL, build
from learners.state import copy_state, encode
from streams.features import DEFAULT_CROSSES


def stream(n: int, seed: int = 0):
    rng = random.Random(seed)
    X, y = [], []
    for _ in range(n):
        x = {"u_user_id": str(rng.randrange(50)), "u_gender": rng.choice("MF"),
             "a_ad_id": str(rng.randrange(30)), "a_genre": rng.choice(["Drama", "Comedy"]),
             "score": rng.random()}
        p = (0.7 if x["a_genre"] == "Drama" else 0.3) + (0.1 if x["u_gender"] == "F" else -0.1)
        X.append(x)
        y.append(int(rng.random() < p))
    return X, y


@pytest.fixture(params=ALL)
def learner(request) -> Learner:
    return build([request.param], DEFAULT_CROSSES[:2])[request.param]


X, Y = stream(1500)


def test_probabilities_in_unit_interval(learner):
    p = learner.progressive_many(X[:500], Y[:500])
    assert p.shape == (500,) and np.all((p >= 0) & (p <= 1)) and np.isfinite(p).all()


def test_learns_something(learner):
    p = learner.progressive_many(X, Y)
    # better than the constant predictor on the second half
    base = log_loss(Y[750:], [np.mean(Y[:750])] * 750)
    assert log_loss(Y[750:], p[750:]) < base


def test_clone_is_fresh_and_equal_config(learner):
    learner.progressive_many(X[:300], Y[:300])
    fresh = learner.clone()
    assert type(fresh) is type(learner) and repr(fresh) == repr(learner)
    a = fresh.progressive_many(X[:200], Y[:200])
    b = build([learner.name], DEFAULT_CROSSES[:2])[learner.name].progressive_many(X[:200], Y[:200])
    np.testing.assert_allclose(a, b)


def test_state_round_trip_continues_identically(learner):
    learner.progressive_many(X[:700], Y[:700])
    restored = copy_state(learner)
    assert type(restored) is type(learner)
    np.testing.assert_allclose(restored.predict_proba_many(X[700:900]),
                               learner.predict_proba_many(X[700:900]))
    np.testing.assert_allclose(restored.progressive_many(X[700:], Y[700:]),
                               learner.progressive_many(X[700:], Y[700:]))


def test_state_is_data_through_a_signed_file(learner):
    from streams.statefile import seal, unseal

    learner.progressive_many(X[:100], Y[:100])
    _, again = unseal(b"k" * 32, seal(b"k" * 32, "snapshot", {}, learner), "snapshot")
    np.testing.assert_allclose(again.predict_proba_many(X[:50]), learner.predict_proba_many(X[:50]))


def test_unseen_and_missing_features(learner):
    learner.progressive_many(X[:300], Y[:300])
    for x in ({}, {"brand_new": "value"}, {"u_gender": None, "a_genre": "Drama"},
              {"u_user_id": "9999", "score": 0.0}):
        p = learner.predict_proba_one(x)
        assert 0.0 <= p <= 1.0
        learner.learn_one(x, 1)


def test_deterministic_under_seed(learner):
    a = learner.clone().progressive_many(X[:400], Y[:400])
    b = learner.clone().progressive_many(X[:400], Y[:400])
    np.testing.assert_array_equal(a, b)


def test_predict_before_learn(learner):
    """The i-th progressive prediction equals the prediction of a model fed only 0..i-1."""
    p = learner.clone().progressive_many(X[:60], Y[:60])
    ref = learner.clone()
    ref.learn_many(X[:40], Y[:40])
    assert ref.predict_proba_one(X[40]) == pytest.approx(p[40], rel=1e-9, abs=1e-12)


def test_holdout_is_scored_not_learned(learner):
    learn = np.array([i % 2 == 0 for i in range(200)])
    held = learner.clone()
    held.progressive_many(X[:200], Y[:200], learn=learn)
    only = learner.clone()
    only.learn_many([x for x, keep in zip(X[:200], learn, strict=True) if keep],
                    [y for y, keep in zip(Y[:200], learn, strict=True) if keep])
    np.testing.assert_allclose(held.predict_proba_many(X[200:260]),
                               only.predict_proba_many(X[200:260]))


def test_batch_boundaries_do_not_matter(learner):
    whole = learner.clone().progressive_many(X[:600], Y[:600])
    parts = learner.clone()
    cut = np.concatenate([parts.progressive_many(X[a:b], Y[a:b])
                          for a, b in ((0, 7), (7, 250), (250, 251), (251, 600))])
    np.testing.assert_allclose(whole, cut)


def test_hashed_state_is_sparse():
    ftrl = build(["ftrl"])["ftrl"]
    assert isinstance(ftrl, HashedLearner)
    ftrl.progressive_many(X[:100], Y[:100])
    _, arrays = encode(ftrl)
    # 4M buckets, but only the touched ones are saved
    assert sum(a.nbytes for a in arrays) < 100_000
