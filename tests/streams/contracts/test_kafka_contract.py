"""Against real Apache Kafka and against the embedded Tansu broker: topics carry their declared
configs, a replay reaches a consumer group exactly once, keys land on the declared partitions."""

from __future__ import annotations

import uuid
from collections import Counter

import orjson
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streams.contracts.events import AdRequest, Feedback, decode
from streams.contracts.topics import catalogue, ensure_topics, partition_for, topic_names
from streams.producer import EventProducer
from streams.sources import movielens
from streams.sources.replay import replay
from tests.helpers import consume_all

pytestmark = pytest.mark.services
N = 3000


def test_topics_have_declared_partitions_and_configs(fresh):
    admin = AdminClient({"bootstrap.servers": fresh.kafka_bootstrap})
    md = admin.list_topics(timeout=10).topics
    for spec in catalogue(fresh):
        name = spec.name(fresh)
        assert len(md[name].partitions) == spec.partitions, name
        cfg = admin.describe_configs([ConfigResource("topic", name)])
        values = {k: v.value for k, v in next(iter(cfg.values())).result(10).items()}
        for key, want in spec.configs.items():
            assert values.get(key) == want, (name, key)


def test_ensure_topics_is_idempotent(fresh):
    assert set(ensure_topics(fresh).values()) == {"exists"}


def test_replay_delivers_each_event_exactly_once_on_its_partition(fresh, movielens_dir):
    ml = movielens.load(movielens_dir)
    stats = replay(movielens.ad_stream(ml, N, extra_candidates=2), EventProducer(fresh),
                   topic_names(fresh))
    assert stats.requests == N and stats.clicks == sum(r.rating >= 4 for r in ml.ratings[:N])

    topics = topic_names(fresh)
    group = f"g-{uuid.uuid4().hex[:6]}"
    msgs = consume_all(fresh, topics["ad-requests"], N, group)
    ids = Counter(decode(AdRequest, m.value()).id for m in msgs)
    assert len(ids) == N and max(ids.values()) == 1  # every request once
    for m in msgs:
        assert m.partition() == partition_for(m.key(), fresh.partitions)
        assert m.key().decode() == orjson.loads(m.value())["id"]
    # a second pass of the same group finds nothing new: offsets were committed
    assert consume_all(fresh, topics["ad-requests"], 0, group, timeout=8, idle=2) == []

    fb = consume_all(fresh, topics["feedback"], stats.impressions + stats.clicks, group + "-fb")
    kinds = Counter(decode(Feedback, m.value()).kind for m in fb)
    assert kinds == {"impression": N, "click": stats.clicks}
    # a request and its feedback share a key, hence a partition: the join stays local
    req_part = {m.key(): m.partition() for m in msgs}
    assert all(req_part[m.key()] == m.partition() for m in fb)
