"""The Faust worker, started as `aimass worker`, against both backends: a replay with malformed
events mixed in lands whole in ClickHouse, every malformed event is in the dead-letter topic with
its reason, and the worker is alive at the end."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from ops.harness import WorkerProcess
from sinks.clickhouse import connect
from streams.contracts.events import DeadLetter, decode
from streams.contracts.topics import topic_names
from streams.producer import EventProducer
from streams.sources import movielens
from streams.sources.replay import malformed_payload, replay
from tests.helpers import consume_all

pytestmark = pytest.mark.services
N = 20000
EVERY = 20  # one malformed request after every 20 good ones: 1,000 malformed


def test_worker_lands_good_events_and_dead_letters_bad_ones(fresh, movielens_dir, tmp_path):
    ml = movielens.load(movielens_dir)
    fresh = fresh.model_copy(update={"models": "ftrl", "join_idle_flush": 2.0})
    worker = WorkerProcess(fresh, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        stats = replay(movielens.ad_stream(ml, N), EventProducer(fresh), topic_names(fresh),
                       malformed=malformed_payload, malformed_every=EVERY)
        assert stats.malformed == N // EVERY
        worker.wait_for("aimass_events_consumed_total", N + stats.malformed, 300,
                        topic="ad-requests")
        worker.wait_for("aimass_events_consumed_total", stats.impressions + stats.clicks, 300,
                        topic="feedback")
        worker.wait_for("aimass_dead_letters_total", stats.malformed, 30)
        worker.wait_for("aimass_checkpoint_examples", N, 300)  # none of the good ones lost
        assert worker.proc.poll() is None, "the worker died"
    finally:
        worker.stop()

    dls = consume_all(fresh, topic_names(fresh)["dead-letters"], stats.malformed,
                      f"dl-{uuid.uuid4().hex[:6]}")
    letters = [decode(DeadLetter, m.value()) for m in dls]
    assert len(letters) == stats.malformed
    assert len({(d.partition, d.offset) for d in letters}) == stats.malformed  # none twice
    assert all(d.reason and d.source_topic.endswith("ad-requests") for d in letters)
    fields = Counter(d.field for d in letters)
    assert set(fields) == {"value", "tenant", "event_time", "candidates", "user.x"}
    payloads = {d.payload.encode("utf-8", "backslashreplace") for d in letters}
    sent = {malformed_payload(i).replace(b"\xff", b"\\xff").replace(b"\xfe", b"\\xfe")
            for i in range(EVERY - 1, N, EVERY)}
    assert payloads == sent  # the raw payloads are kept whole

    ch = connect(fresh.clickhouse_dsn)
    try:
        assert ch.query("SELECT count(), uniqExact(request_id) FROM ad_requests") == [(N, N)]
        assert ch.query("SELECT count() FROM feedback") == [(stats.impressions + stats.clicks,)]
        assert ch.query("SELECT count() FROM dead_letters") == [(stats.malformed,)]
    finally:
        ch.close()
