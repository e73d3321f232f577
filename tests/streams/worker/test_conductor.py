"""The conductor's delivery without a coroutine (streams.worker.conductor) puts on a channel's
queue what Faust's handler puts, and steps aside whenever Faust's handler would wait."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.settings import Settings
from streams.worker.app import _faust_app
from streams.worker.conductor import Conductor


def setup(name: str, driver: str = "aimass"):
    app = _faust_app(Settings(app_id=name, faust_driver=driver,
                              kafka_bootstrap="127.0.0.1:9"))
    topic = app.topic("requests", acks=True)
    tp = TP("requests", 0)
    app.topics.add(topic)
    app.topics._tp_index[tp].add(topic)  # as an assignment of the partition does
    app.topics._update_callback_map()
    app.flow_control.resume()  # as the consumer does once partitions are assigned
    return app, topic, tp


def message(offset: int, tp: TP) -> ConsumerMessage:
    return ConsumerMessage("requests", 0, offset, 0.0, 0, [("h", b"x")], b"k", b"v%d" % offset,
                           None, 1, 1, tp=tp, generation_id=1)


def test_puts_what_faust_puts():
    async def run():
        ours, q_ours, tp = setup("ours")
        theirs, q_theirs, _ = setup("theirs")
        put = ours.topics.put_now(tp)
        assert isinstance(ours.topics, Conductor) and put is not None
        for offset in range(3):
            assert put(message(offset, tp))
            await theirs.topics.on_message(message(offset, tp))
        got = [q_ours.queue.get_nowait() for _ in range(3)]
        want = [q_theirs.queue.get_nowait() for _ in range(3)]
        assert [type(e) for e in got] == [type(e) for e in want]
        assert [(e.key, e.value, e.headers, e.message.offset, e.message.refcount)
                for e in got] == [(e.key, e.value, e.headers, e.message.offset,
                                   e.message.refcount) for e in want]

    asyncio.run(run())


def test_steps_aside_where_faust_would_wait():
    async def run():
        app, topic, tp = setup("aside")
        put = app.topics.put_now(tp)
        app.flow_control.suspend()  # a rebalance
        m = message(0, tp)
        assert not put(m) and m.refcount == 0 and topic.queue.empty()
        app.flow_control.resume()
        for offset in range(topic.queue.pressure_high_size):
            assert put(message(offset, tp))
        m = message(10**6, tp)
        assert not put(m) and m.refcount == 0  # at the high-pressure mark: Faust's path
        while not topic.queue.empty():
            topic.queue.get_nowait()
        app.producer.buffer.pending.put_nowait("m")
        app.producer.buffer.max_messages = 0  # the producer buffer must ebb first
        assert not put(message(1, tp))
        async with app.topics._tp_to_callback_lock:  # handlers being rebuilt
            assert app.topics.put_now(tp) is None

    asyncio.run(run())


def test_faust_stock_driver_keeps_faust_conductor():
    app, _, _ = setup("stock", driver="kafka")
    assert not isinstance(app.topics, Conductor)
    assert isinstance(app.topics, faust.transport.conductor.Conductor)
