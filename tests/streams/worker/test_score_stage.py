"""The score stage without Kafka: it publishes what the API answers and skips served requests."""

from __future__ import annotations

import asyncio

import orjson

from tests.helpers import KEY
from tests.streams.worker.fakes import stage


def test_the_score_stage_publishes_what_the_api_answers_and_skips_served_ones(tmp_path):
    """One scoring path: for the same snapshot, the worker publishes for each request the
    record ``/recommend`` answers (``served_by`` aside), however many candidates; a request a
    serving replica answered is joined later but not scored (nor published) again."""
    from streams.contracts.events import AdRequest, Candidate
    from streams.serving.ranking import MANY, Ranker
    from streams.serving.snapshots import ModelStore, load_snapshot
    from streams.state.model_sets import snapshot_of
    from streams.worker.score import ScoreStage
    from tests.helpers import trained_snapshot

    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(tenant="t"), KEY), KEY))
    st = stage(tmp_path)
    sent: list = []
    st.rt.send = lambda role, messages: sent.extend(messages)
    score = ScoreStage(st.rt, store)
    user, ctx = {"u_user_id": "7", "u_gender": "F"}, {"hour": 9}
    cands = [Candidate(f"m{i}", {"a_genre": ["Drama", "Comedy"][i % 2], "year": 1990 + i})
             for i in range(3 * MANY)]
    many = AdRequest("many", 1.0, "t", user, cands, ctx)
    few = AdRequest("few", 1.0, "t", user, cands[:2], ctx)
    served = AdRequest("served", 1.0, "t", user, cands, ctx, served=True)
    asyncio.run(score.handle([many, few, served]))
    assert sorted(k for k, _ in sent) == [b"few", b"many"]
    published = {k.decode(): orjson.loads(v) for k, v in sent}
    api = Ranker(store, st.rt.settings.serving_model)  # what /recommend ranks with
    for req in (many, few):
        [answer] = api.rank_many([req])
        got = published[req.id]
        assert got["served_by"] == "worker" and answer.served_by == "replica"
        assert got["ranked"] == answer.ranked and got["model_version"] == answer.model_version
        assert got["model"] == answer.model == "ensemble_stacking"
    assert st.rt.registry.get_sample_value("aimass_requests_already_served_total",
                                           {"tenant": "t"}) == 1
