"""Hostile but well-formed values are bad input, refused where they enter with the field named;
a row a sink can never take goes to the dead letters with the column while the rest is written;
a failed delivery fails its own call only."""

from __future__ import annotations

import asyncio
import time

import pytest

from sinks import schema
from sinks.exceptions import SinkBackpressure, SinkFatal
from sinks.table import TableSink
from streams.contracts import batches
from streams.contracts.events import (
    MAX_CLOCK_SKEW,
    AdRequest,
    Feedback,
    InvalidEvent,
    TrainingExample,
)
from streams.producer import Delivery, DeliveryFailed, EventProducer


def request(**over) -> dict:
    return {"id": "r1", "event_time": 1.7e9, "tenant": "acme", "user": {"age": 30},
            "candidates": [{"ad_id": "a", "features": {"genre": "Drama"}}], **over}


@pytest.mark.parametrize("body, field", [
    (request(event_time=2**32), "event_time"),
    (request(event_time=time.time() + MAX_CLOCK_SKEW + 60), "event_time"),
    (request(user={"x": 1e308}), "user.x"),
    (request(user={"x": -1e16}), "user.x"),
    (request(user={"x": 10**30}), "user.x"),
    (request(user={"x": "y" * 1_000_000}), "user.x"),
    (request(user={"n" * 200: 1}), "user"),
    (request(candidates=[{"ad_id": "a", "features": {"p": 1e308}}]), "candidates[0].features.p"),
    (request(candidates=[{"ad_id": "a"}, {"ad_id": "b", "features": {"s": "z" * 2000}}]),
     "candidates[1].features.s"),
    (request(deadline=time.time() + 10 * 86400), "deadline"),
])
def test_hostile_values_are_refused_naming_the_field(body, field):
    with pytest.raises(InvalidEvent) as err:
        AdRequest.from_dict(body)
    assert err.value.field == field


def test_values_within_the_limits_pass():
    now = time.time()
    r = AdRequest.from_dict(request(event_time=now + 10, user={"ts_ms": 1.7e12, "id": 2**62},
                                    deadline=now + 3600))
    assert r.user["ts_ms"] == 1.7e12
    TrainingExample.from_dict({"id": "e", "event_time": now, "tenant": "t",
                               "features": {"x": -1e15}, "label": 1})


def test_a_far_future_feedback_is_a_dead_letter_not_a_watermark():
    raws = [batches.Raw(b'{"id": "f", "event_time": 99999999999, "tenant": "t", '
                       b'"request_id": "r", "ad_id": "a", "kind": "click"}', "feedback", 2, 7,
                       b"r", [("trace", b"x1")])]
    good, bad = batches.decode_batch(Feedback, raws, 1.0)
    assert not good and bad[0].field == "event_time"
    assert bad[0].key == "r" and bad[0].headers == [["trace", "x1"]]  # kept
    assert bad[0].kafka_key == b"r" and bad[0].kafka_headers == [("trace", b"x1")]


class RefusingClickHouse:
    """Refuses any insert holding an event time beyond DateTime (as the driver does), or a
    connection error while ``down``."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.down = False

    def insert(self, table, columns, rows):
        if self.down:
            raise ConnectionRefusedError("ClickHouse is down")
        i = columns.index("event_time")
        if any(r[i] >= 2**32 for r in rows):
            raise OverflowError("'I' format requires 0 <= number <= 4294967295")
        self.rows += rows
        return len(rows)


def test_a_row_the_table_cannot_take_is_found_and_the_rest_written():
    ch = RefusingClickHouse()
    sink = TableSink(ch, schema.FEEDBACK)
    fbs = [Feedback(f"f{i}", 1.7e9, "t", "r", "a", "click") for i in range(100)]
    rows = batches.feedback_rows(fbs, 1)
    rows[37]["event_time"] = 2**32 + 5  # slipped past validation somehow
    report = sink.write(rows)
    assert report.written == 99 and len(ch.rows) == 99
    [(row, column, reason)] = report.rejected
    assert row["feedback_id"] == "f37" and column == "event_time"
    assert "out of range for DateTime" in reason


def test_a_connection_error_is_backpressure_not_a_dead_letter():
    ch = RefusingClickHouse()
    ch.down = True
    sink = TableSink(ch, schema.FEEDBACK)
    rows = batches.feedback_rows([Feedback("f", 1.7e9, "t", "r", "a", "click")], 1)
    with pytest.raises(SinkBackpressure) as first:
        sink.write(rows)
    with pytest.raises(SinkBackpressure) as second:
        sink.write(rows)
    assert second.value.retry_after > first.value.retry_after
    ch.down = False
    assert sink.write(rows).written == 1


def test_a_schema_error_is_fatal_and_names_the_table():
    class NoTable:
        def insert(self, table, columns, rows):
            raise RuntimeError("Code: 60. DB::Exception: Table aimass.feedback doesn't exist. "
                               "(UNKNOWN_TABLE)")

    with pytest.raises(SinkFatal) as err:
        TableSink(NoTable(), schema.FEEDBACK).write(
            batches.feedback_rows([Feedback("f", 1.7e9, "t", "r", "a", "click")], 1))
    assert err.value.table == "feedback"


def test_a_row_missing_a_column_names_it():
    with pytest.raises(SinkFatal) as err:
        TableSink(RefusingClickHouse(), schema.FEEDBACK).write([{"tenant": "t"}])
    assert err.value.column == "feedback_id"


class FakeProducer:
    """confluent-kafka's Producer as far as EventProducer uses it: each produce is delivered
    on the next poll/flush, failing while ``failing`` is set."""

    def __init__(self):
        self.queue = []
        self.failing = False

    def produce(self, topic, value=None, key=None, on_delivery=None, **kw):
        self.queue.append((topic, on_delivery, self.failing))

    def poll(self, timeout=0):
        q, self.queue = self.queue, []

        class Msg:
            def __init__(self, t):
                self._t = t

            def topic(self):
                return self._t

        for topic, cb, fail in q:
            cb("MSG_TIMED_OUT" if fail else None, Msg(topic))
        return len(q)

    def flush(self, timeout=0):
        self.poll()
        return 0

    def __len__(self):
        return len(self.queue)


def test_one_failed_delivery_never_fails_a_later_call(tmp_path):
    from streams.settings import Settings

    p = EventProducer(Settings(data_dir=tmp_path))
    p._p = FakeProducer()
    p._p.failing = True
    first = Delivery()
    p.send_raw("t", b"k", b"v", first)
    with pytest.raises(DeliveryFailed):
        p.wait(first, 1.0)
    p._p.failing = False
    second = Delivery()
    for i in range(3):
        p.send_raw("t", b"k%d" % i, b"v", second)
    p.wait(second, 1.0)  # raises nothing: the earlier failure was the first call's
    assert second.confirmed == 3 and not second.errors


def test_the_api_answers_503_for_its_own_failed_delivery_then_202(tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from streams.serving.api import create_serving_app
    from streams.serving.snapshots import ModelStore

    calls = []

    def example_log(messages):
        calls.append(len(messages))
        if len(calls) == 1:
            raise DeliveryFailed("1 of 1 messages failed, first: t: MSG_TIMED_OUT")

    async def run():
        app = create_serving_app(ModelStore(), example_log=example_log)
        async with TestClient(TestServer(app)) as client:
            body = {"tenant": "acme", "examples": [{"features": {"x": 1.0}, "label": 1}]}
            first = await client.post("/examples", json=body)
            second = await client.post("/examples", json=body)
            return first.status, first.headers.get("Retry-After"), second.status

    assert asyncio.run(run()) == (503, "5", 202)
