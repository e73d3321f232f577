"""One check suite over every learner, in the manner of river's ``utils.estimator_checks``:
:func:`yield_checks` yields the checks that apply to a learner, chosen by what it declares
(:class:`~learners.base.MiniBatchLearner` learns a batch after scoring all of it, so the
per-example checks do not apply; a multi-output learner has ``outputs``), never by probing.

Each check takes a fresh, untrained learner and raises ``AssertionError`` on failure; the
test suite (``tests/learners/test_checks.py``) runs every check on every learner, ``deep``
included.

>>> from learners.ftrl import FTRLProximal
>>> [c.__name__ for c in yield_checks(FTRLProximal(bits=12))][:3]
['check_probabilities_in_unit_interval', 'check_learns_something', 'check_clone']
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import numpy as np

from .base import Freezable, Learner, MiniBatchLearner, ServingOnly
from .metrics import log_loss
from .state import ReadForServing, copy_state, decode, encode


def stream(n: int, seed: int = 0) -> tuple[list[dict], list[int]]:
    """A small labelled stream: user and ad tokens, a number, a planted pattern."""
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


X, Y = stream(1500)


def _main(learner: Learner, outs: dict) -> np.ndarray:
    """The output a single-output learner gives, or a multi-output learner's last one."""
    return outs[learner.name] if learner.name in outs else list(outs.values())[-1]


def check_probabilities_in_unit_interval(learner: Learner) -> None:
    for p in learner.progressive_outputs(X[:500], Y[:500]).values():
        assert p.shape == (500,) and np.isfinite(p).all()
        assert np.all((p >= 0) & (p <= 1))


def check_learns_something(learner: Learner) -> None:
    """Better than the constant predictor on the second half of the stream."""
    p = _main(learner, learner.progressive_outputs(X, Y))
    base = log_loss(Y[750:], [np.mean(Y[:750])] * 750)
    assert log_loss(Y[750:], p[750:]) < base


def check_clone(learner: Learner) -> None:
    """A clone is untrained and configured alike: it predicts as a fresh one does."""
    fresh = learner.clone()
    learner.progressive_outputs(X[:300], Y[:300])
    again = learner.clone()
    assert type(again) is type(learner) and repr(again) == repr(learner)
    a = again.progressive_outputs(X[:200], Y[:200])
    b = fresh.progressive_outputs(X[:200], Y[:200])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)


def check_state_round_trip(learner: Learner) -> None:
    """Through the state format (data only), a learner predicts and goes on learning
    exactly as the original."""
    learner.progressive_outputs(X[:700], Y[:700])
    restored = copy_state(learner)
    assert type(restored) is type(learner)
    a, b = restored.predict_outputs(X[700:900]), learner.predict_outputs(X[700:900])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5)
    a = restored.progressive_outputs(X[700:], Y[700:])
    b = learner.progressive_outputs(X[700:], Y[700:])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5)


def check_request_scoring(learner: Learner) -> None:
    """A request (shared user, its candidates) scores as its merged rows do, and scoring it,
    unseen feature names included, changes nothing in the model."""
    learner.progressive_outputs(X[:700], Y[:700])
    before = encode(learner)
    shared = {"u_user_id": "7", "u_gender": "F", "never_seen": 1.5}
    items = [{k: v for k, v in x.items() if not k.startswith("u_")} for x in X[700:720]]
    items[3]["also_new"] = "x"
    got = learner.predict_request(shared, items)
    want = learner.predict_proba_many([{**shared, **it} for it in items])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    after = encode(learner)
    assert before[0] == after[0] and all(np.array_equal(a, b) for a, b in
                                         zip(before[1], after[1], strict=True))


def _request() -> tuple[dict, list[dict]]:
    """A request's shared features (one never seen) and its candidates' own."""
    return ({"u_user_id": "7", "u_gender": "F", "never_seen": 1.5},
            [{k: v for k, v in x.items() if not k.startswith("u_")} for x in X[700:760]])


def _refused(learner: Learner) -> list[bool]:
    """Learning, then saving ``learner``: whether each raised ServingOnly (else it worked)."""
    out = []
    for use in (lambda: learner.progressive_outputs(X[900:950], Y[900:950]),
                lambda: encode(learner)):
        try:
            use()
            out.append(False)
        except ServingOnly:
            out.append(True)
    return out


def check_frozen_scores_alike(learner: Learner) -> None:
    """A frozen learner (a replica's) scores as it did before, requests included, and once it
    learns again it scores as a twin that was never frozen."""
    twin = learner.clone()
    for m in (learner, twin):
        m.progressive_outputs(X[:700], Y[:700])
    shared, items = _request()
    before = learner.predict_proba_many(X[700:900]), learner.predict_request(shared, items)
    learner.freeze()
    after = learner.predict_proba_many(X[700:900]), learner.predict_request(shared, items)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    a, b = learner.progressive_outputs(X[900:1100], Y[900:1100]), \
        twin.progressive_outputs(X[900:1100], Y[900:1100])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(learner.predict_proba_many(X[1100:1200]),
                                  twin.predict_proba_many(X[1100:1200]))


def check_serve_only_scores_alike(learner: Learner) -> None:
    """Kept for serving only (a snapshot's member), a learner scores as it did; learning or
    saving it then either works or raises ServingOnly, never goes on from lost state."""
    learner.progressive_outputs(X[:700], Y[:700])
    before = learner.predict_proba_many(X[700:900])
    learner.serve_only()
    np.testing.assert_allclose(learner.predict_proba_many(X[700:900]), before, rtol=1e-12,
                               atol=0)
    _refused(learner)


def check_read_for_serving_scores_alike(learner: Learner) -> None:
    """Read from its state for serving only (a replica's snapshot), a learner scores to the
    bit as the same state read whole and then kept for serving only, and refuses to learn
    or be saved."""
    learner.progressive_outputs(X[:700], Y[:700])
    tree, arrays = encode(learner)
    whole = decode(tree, [a.copy() for a in arrays])
    whole.serve_only()
    served = decode(tree, [a.copy() for a in arrays], serving=True)
    shared, items = _request()
    np.testing.assert_array_equal(served.predict_proba_many(X[700:900]),
                                  whole.predict_proba_many(X[700:900]))
    np.testing.assert_array_equal(served.predict_request(shared, items),
                                  whole.predict_request(shared, items))
    assert all(_refused(served)), "a learner read for serving learned or was saved"


def check_state_is_data(learner: Learner) -> None:
    """Its state holds no object arrays and encodes (an unknown type would raise)."""
    learner.progressive_outputs(X[:100], Y[:100])
    _, arrays = encode(learner)
    assert all(a.dtype.kind in "biuf" for a in arrays)


def check_unseen_and_missing_features(learner: Learner) -> None:
    learner.progressive_outputs(X[:300], Y[:300])
    for x in ({}, {"brand_new": "value"}, {"u_gender": None, "a_genre": "Drama"},
              {"u_user_id": "9999", "score": 0.0}):
        for p in learner.predict_outputs([x]).values():
            assert 0.0 <= float(p[0]) <= 1.0
        learner.progressive_outputs([x], [1])


def check_extreme_values_stay_finite(learner: Learner) -> None:
    """Values at the edge of what the API admits (streams.contracts.events.MAX_MAGNITUDE) give
    finite probabilities, then and afterwards."""
    big = [{**x, "score": s} for x, s in zip(X[:40], [1e15, -1e15] * 20, strict=True)]
    learner.progressive_outputs(X[:200], Y[:200])
    for p in learner.progressive_outputs(big, Y[:40]).values():
        assert np.isfinite(p).all()
    for p in learner.predict_outputs(X[200:260]).values():
        assert np.isfinite(p).all()


def check_deterministic(learner: Learner) -> None:
    a = learner.clone().progressive_outputs(X[:400], Y[:400])
    b = learner.clone().progressive_outputs(X[:400], Y[:400])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def check_outputs_declared(learner: Learner) -> None:
    outs = learner.progressive_outputs(X[:50], Y[:50])
    assert tuple(outs) == learner.output_names()
    assert tuple(learner.predict_outputs(X[:5])) == learner.output_names()


def check_predict_before_learn(learner: Learner) -> None:
    """The i-th progressive prediction equals that of a model fed only 0..i-1."""
    p = learner.clone().progressive_many(X[:60], Y[:60])
    ref = learner.clone()
    ref.learn_many(X[:40], Y[:40])
    assert abs(ref.predict_proba_one(X[40]) - p[40]) <= 1e-9 * max(abs(p[40]), 1e-3)


def check_holdout_is_scored_not_learned(learner: Learner) -> None:
    learn = np.array([i % 2 == 0 for i in range(200)])
    held = learner.clone()
    held.progressive_many(X[:200], Y[:200], learn=learn)
    only = learner.clone()
    only.learn_many([x for x, keep in zip(X[:200], learn, strict=True) if keep],
                    [y for y, keep in zip(Y[:200], learn, strict=True) if keep])
    np.testing.assert_allclose(held.predict_proba_many(X[200:260]),
                               only.predict_proba_many(X[200:260]))


def check_weights_count(learner: Learner) -> None:
    """Clicks weighted 4 (the rest 1) raise the predicted click rate over the same stream
    unweighted, and a weight of 1 everywhere is the same as no weights."""
    w = np.where(np.asarray(Y[:1000]) == 1, 4.0, 1.0)
    plain, ones, heavy = learner.clone(), learner.clone(), learner.clone()
    plain.progressive_outputs(X[:1000], Y[:1000])
    ones.progressive_outputs(X[:1000], Y[:1000], np.ones(1000))
    heavy.progressive_outputs(X[:1000], Y[:1000], w)
    if isinstance(learner, MiniBatchLearner):  # it trains on what it still holds
        for m in (plain, ones, heavy):
            m.flush()
    probe = X[1000:1300]
    np.testing.assert_allclose(_main(learner, ones.predict_outputs(probe)),
                               _main(learner, plain.predict_outputs(probe)), rtol=1e-6)
    assert _main(learner, heavy.predict_outputs(probe)).mean() > \
        _main(learner, plain.predict_outputs(probe)).mean() + 0.02


def check_batch_boundaries_do_not_matter(learner: Learner) -> None:
    whole = learner.clone().progressive_many(X[:600], Y[:600])
    parts = learner.clone()
    cut = np.concatenate([parts.progressive_many(X[a:b], Y[a:b])
                          for a, b in ((0, 7), (7, 250), (250, 251), (251, 600))])
    np.testing.assert_allclose(whole, cut)


def check_minibatch_holdout_never_learned(learner: Learner) -> None:
    """A mini-batch learner given only held-out examples learns nothing."""
    before = learner.clone()
    learner.progressive_outputs(X[:300], Y[:300], learn=np.zeros(300, dtype=bool))
    a, b = learner.predict_outputs(X[300:340]), before.predict_outputs(X[300:340])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)


COMMON = (check_probabilities_in_unit_interval, check_learns_something, check_clone,
          check_state_round_trip, check_request_scoring, check_state_is_data,
          check_unseen_and_missing_features,
          check_extreme_values_stay_finite, check_deterministic, check_outputs_declared,
          check_weights_count)
PER_EXAMPLE = (check_predict_before_learn, check_holdout_is_scored_not_learned,
               check_batch_boundaries_do_not_matter)


def yield_checks(learner: Learner) -> Iterator[Callable[[Learner], None]]:
    """The checks that apply to ``learner``."""
    yield from COMMON
    if isinstance(learner, Freezable):
        yield check_frozen_scores_alike
        yield check_serve_only_scores_alike
    if isinstance(learner, ReadForServing):
        yield check_read_for_serving_scores_alike
    if isinstance(learner, MiniBatchLearner):
        yield check_minibatch_holdout_never_learned
    else:
        yield from PER_EXAMPLE
