"""Real Kafka keeps its log across `aimass down` / `aimass up`."""

from __future__ import annotations

import pytest

from ops import services
from streams.contracts.topics import ensure_topics, topic_names
from streams.producer import EventProducer
from tests.conftest import BACKENDS, make_settings
from tests.helpers import consume_all

pytestmark = [pytest.mark.services,
              pytest.mark.skipif("kafka" not in BACKENDS, reason="real Kafka not selected")]


def test_kafka_keeps_data_across_down_and_up(tmp_path):
    s = make_settings(tmp_path, embedded=False)
    quiet = lambda _: None  # noqa: E731
    services.up(s, prometheus=False, echo=quiet)
    try:
        ensure_topics(s)
        p = EventProducer(s)
        topic = topic_names(s)["training"]
        for i in range(200):
            p.send_raw(topic, f"k{i}".encode(), b'{"n": %d}' % i)
        p.flush()
        assert services.down(s, echo=quiet) == ["clickhouse", "kafka"]
        assert not services.status(s)
        services.up(s, prometheus=False, echo=quiet)
        msgs = consume_all(s, topic, 200, "after-restart")
        assert sorted(int(m.key()[1:]) for m in msgs) == list(range(200))
    finally:
        services.down(s, echo=quiet)
