"""Scoring one request (shared user/context, many candidates) gives exactly what scoring the
merged feature dicts gives: the hasher's column path, every learner's ``predict_request``, the
snapshot's ``score_request`` for every output, and the vectorised vote."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble import build_combiner
from ensemble.vote import Vote
from learners.checks import stream
from learners.columns import by_columns
from learners.hashing import FeatureHasher
from learners.registry import ALL, build
from streams.contracts.events import AdRequest, Candidate
from streams.contracts.features import DEFAULT_CROSSES, pair_features, pairs_by_column, request_features
from streams.serving.ranking import Ranker, ranked
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from streams.training.model_set import ModelSet
from tests.helpers import KEY, examples, trained_snapshot

VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", "1"]),
                   st.floats(-2, 2, allow_nan=False))
CROSSES = (("u_user_id", "a_genre"), ("u_user_id", "u_gender"), ("a_ad_id", "a_genre"),
           ("a_ad_id", "u_x"), ("u_gender", "a_x"))


@settings(max_examples=300, deadline=None)
@given(shared=st.dictionaries(st.sampled_from(["u_user_id", "u_gender", "u_x", "c_hour"]), VALUES),
       items=st.lists(st.dictionaries(st.sampled_from(["a_ad_id", "a_genre", "a_x", "u_x"]),
                                      VALUES), max_size=6),
       as_columns=st.booleans())
def test_request_rows_equal_merged_rows(shared, items, as_columns):
    h = FeatureHasher(12, CROSSES)
    given_items = by_columns(items) if as_columns and items else items
    a = h.transform_request(shared, given_items)
    b = h.transform([{**shared, **it} for it in given_items])
    assert a.indptr.tolist() == b.indptr.tolist()
    # the same tokens per row (their order may differ when items list keys differently)
    for i in range(len(items)):
        sa = sorted(zip(a.indices[a.indptr[i]:a.indptr[i + 1]].tolist(),
                        a.values[a.indptr[i]:a.indptr[i + 1]].tolist(), strict=True))
        sb = sorted(zip(b.indices[b.indptr[i]:b.indptr[i + 1]].tolist(),
                        b.values[b.indptr[i]:b.indptr[i + 1]].tolist(), strict=True))
        assert sa == sb


FEATURES = st.dictionaries(st.sampled_from(["genre", "year", "age", "x", "ad_id"]), VALUES)


@settings(max_examples=300, deadline=None)
@given(cands=st.lists(st.tuples(st.sampled_from(["a", "b", "7"]), FEATURES), max_size=6),
       user=FEATURES)
def test_request_features_are_the_pairs_by_column(cands, user):
    cands = [Candidate(ad, f) for ad, f in cands]
    shared, items = request_features(user, {"hour": 3}, cands)
    want = [pair_features(user, {"hour": 3}, c) for c in cands]
    def present(rows):
        return [{k: v for k, v in r.items() if v is not None} for r in rows]

    assert present({**shared, **it} for it in items) == present(want)


@pytest.mark.parametrize("name", ["forest", "ftrl", "fm"])
def test_learners_score_columns_as_dicts(name):
    model = build([name], DEFAULT_CROSSES[:2])[name]
    X, y = stream(600)
    model.learn_many(X, y)
    rng = np.random.default_rng(3)
    items = [{"a_ad_id": str(rng.integers(30)), "a_genre": rng.choice(["Drama", None]),
              "a_x": float(rng.random()) if i % 3 else None, "a_n": int(i % 4)}
             for i in range(40)]
    shared = {"u_user_id": "7", "u_gender": "F"}
    np.testing.assert_allclose(model.predict_request(shared, by_columns(items)),
                               model.predict_request(shared, items), rtol=1e-12)


def request(seed: int, n: int = 40):
    rng = np.random.default_rng(seed)
    user = {"user_id": str(rng.integers(50)), "gender": str(rng.choice(["M", "F"]))}
    cands = [Candidate(str(rng.integers(30)), {"genre": str(rng.choice(["Drama", "Comedy"]))})
             for _ in range(n)]
    return user, {"hour": int(rng.integers(24))}, cands


@pytest.mark.parametrize("name", ALL)
def test_predict_request_equals_predict_many(name):
    model = build([name], DEFAULT_CROSSES[:2])[name]
    X, y = stream(800)
    for trained in (False, True):
        for seed in range(3):
            user, ctx, cands = request(seed)
            shared, items = request_features(user, ctx, cands)
            merged = [pair_features(user, ctx, c) for c in cands]
            np.testing.assert_allclose(model.predict_request(shared, items),
                                       model.predict_proba_many(merged), rtol=1e-12, atol=1e-15)
        if not trained:
            model.learn_many(X, y)


def test_snapshot_scores_a_request_as_its_merged_features():
    ms = ModelSet("t", build(["ftrl", "fm", "river_logreg", "adpredictor"], DEFAULT_CROSSES[:2]),
                  ensembles={e: build_combiner(e) for e in ("average", "weighted", "vote",
                                                             "stacking")})
    exs = examples(600)
    ms.process(exs[:300])
    ms.process(exs[300:])
    snap = load_snapshot(snapshot_of(ms, KEY), KEY)
    # frozen, compiled scorers; river_logreg scales the stream's number ("score") per feature,
    # which its compiled table cannot, so it keeps river's path
    assert set(snap.compiled) == {"adpredictor"}
    serving_hasher = FeatureHasher()  # a replica's own, kept across snapshots
    for seed in (7, 8):
        user, ctx, cands = request(seed, 60)
        cands.append(Candidate("unseen-ad", {"genre": "Western"}))
        shared, items = request_features(user, ctx, cands)
        merged = [pair_features(user, ctx, c) for c in cands]
        for output in snap.outputs():
            for hasher in (None, serving_hasher):
                np.testing.assert_allclose(snap.score_request(shared, items, output, hasher),
                                           snap.score(merged, output), rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=40))
def test_few_candidate_requests_score_as_their_pairs(shapes):
    """rank_many scores requests of a few candidates together: by column where their
    features allow it (pairs_by_column), else pair by pair; the same ranking either way."""
    snap = _trained_snapshot()
    store = ModelStore()
    store.swap(snap)
    reqs = []
    for i, (n, odd) in enumerate(shapes):
        user, ctx, cands = request(i, n)
        if odd:  # one more feature name: the batch is no longer uniform
            user = {**user, "age": 30 + i}
        reqs.append(AdRequest(f"r{i}", 1.0, "t", user, cands, ctx))
    pairs = [pair_features(r.user, r.context, c) for r in reqs for c in r.candidates]
    assert (pairs_by_column(reqs) is not None) == (len(set(map(tuple, pairs))) == 1)
    for output in snap.outputs():
        got = Ranker(store, output).rank_many(reqs)
        for rec, r in zip(got, reqs, strict=True):
            want = snap.score([pair_features(r.user, r.context, c) for c in r.candidates],
                              output) if r.candidates else []
            assert rec.ranked == ranked(r, want)


@functools.cache
def _trained_snapshot():
    ms = ModelSet("t", build(["ftrl", "fm", "adpredictor"], DEFAULT_CROSSES[:2]),
                  ensembles={"stacking": build_combiner("stacking")})
    ms.process(examples(400))
    return load_snapshot(snapshot_of(ms, KEY), KEY)


@pytest.mark.parametrize("policy", ["weighted", "average", "best", "abstain"])
def test_vote_combine_many_is_combine_one_per_row(policy):
    rng = np.random.default_rng(1)
    v = Vote(0.6, policy)
    assert v.combine_many(rng.random((5, 4))).shape == (5,)  # before any learning
    P, y = rng.random((400, 4)), (rng.random(400) < 0.4).astype(float)
    v.combine_progressive(P[:300], y[:300])
    np.testing.assert_allclose(v.combine_many(P[300:]),
                               [v.combine_one(row) for row in P[300:]], rtol=1e-12)


def test_a_loaded_snapshot_keeps_only_what_scoring_reads():
    """A replica's snapshot holds the hashed models' and the forest's serving tables, not
    their learning arrays (hundreds of MB a tenant): it scores as the trained set does and
    refuses to learn."""
    from learners.base import ServingOnly
    from learners.checks import X as rows
    from learners.checks import Y as labels

    ms = trained_snapshot(models=("ftrl", "fm", "forest"))
    snap = load_snapshot(snapshot_of(ms, KEY), KEY)
    for name in ("ftrl", "fm", "forest"):
        m, trained = snap.models[name], ms.models[name]
        if name == "forest":
            assert m.hist.size == m.pos.size == 0 < trained.hist.size
        else:
            assert m.z.size == m.n.size == 0 < trained.z.size
        np.testing.assert_allclose(m.predict_proba_many(rows[:50]),
                                   trained.predict_proba_many(rows[:50]), rtol=1e-12, atol=0)
        with pytest.raises(ServingOnly):
            m.progressive_many(rows[:10], labels[:10])
