"""A failed delivery fails its own call only: the next call, and the API's next answer, are
unaffected."""


from __future__ import annotations

import asyncio

import pytest

from streams.producer import POLL_EVERY, Delivery, DeliveryFailed, EventProducer


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


def test_reports_are_served_every_poll_every_sends_and_by_every_wait(tmp_path):
    """Sending polls once per POLL_EVERY messages, not after each; a wait serves the rest."""
    from streams.settings import Settings

    p = EventProducer(Settings(data_dir=tmp_path))
    fake = p._p = FakeProducer()
    polls = []
    poll = fake.poll
    fake.poll = lambda timeout=0: polls.append(timeout) or poll(timeout)
    for _ in range(POLL_EVERY - 1):
        assert p.try_send_raw("t", b"k", b"v")
    assert polls == [] and p.delivered == 0
    p.try_send_raw("t", b"k", b"v")
    assert len(polls) == 1 and p.delivered == POLL_EVERY
    d = Delivery()
    for i in range(5):
        p.send_raw("t", b"k%d" % i, b"v", d)
    assert d.confirmed == 0
    p.wait(d, 1.0)
    assert d.confirmed == 5 and p.delivered == POLL_EVERY + 5


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

