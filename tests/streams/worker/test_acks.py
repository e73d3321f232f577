"""A batch acknowledged in one pass (streams.worker.acks) leaves the consumer's bookkeeping
exactly as Faust's per-event chain does: the same offsets safe to commit, the same messages
marked, references held by a stage kept, offsets behind the committed one left out."""

from __future__ import annotations

import faust
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.worker.acks import BatchAcks, ack_events, hold_events


def app_and_events(name: str):
    app = faust.App(name, broker="aimass://127.0.0.1:9")
    topic = app.topic("examples", value_serializer="raw", acks=True)
    tp = TP("examples", 0)
    events = []
    for offset in range(12):
        m = ConsumerMessage("examples", 0, offset, 0.0, 0, [], b"k", b"v", None, 1, 1,
                            tp=tp, generation_id=1)
        m.refcount = 2 if offset % 4 == 0 else 1  # a stage holds a reference to some
        events.append(faust.Event(app, b"k", b"v", [], m))
    app.topics.add(topic)
    app.topics.acking_topics.add("examples")  # as subscribing an agent to it does
    app.consumer._committed_offset[tp] = 3  # offsets before it are committed already
    return app, tp, events


def state(app, tp, events):
    c = app.consumer  # (Faust's own bookkeeping, what it commits from)
    return (sorted(c._acked[tp]), sorted(c._acked_index[tp]), c._n_acked,
            [(e.message.acked, e.message.refcount) for e in events])


def test_a_batch_in_one_pass_is_each_event_acknowledged():
    ours, tp, batch = app_and_events("ours")
    theirs, tp2, one_by_one = app_and_events("theirs")
    assert isinstance(ours.consumer, BatchAcks)
    for _ in range(2):  # a second pass: the references stages held, then nothing more
        ack_events(batch)
        for ev in one_by_one:
            ev.ack()
        assert state(ours, tp, batch) == state(theirs, tp2, one_by_one)
    assert sorted(ours.consumer._acked[tp]) == list(range(3, 12))
    assert all(e.message.acked for e in batch)


def test_events_held_in_one_pass_are_each_event_increfed():
    ours, tp, batch = app_and_events("ours-held")
    theirs, tp2, one_by_one = app_and_events("theirs-held")
    assert isinstance(ours.consumer, BatchAcks)
    hold_events(batch)
    for ev in one_by_one:
        ev.message.incref()
    assert state(ours, tp, batch) == state(theirs, tp2, one_by_one)
    assert [e.message.refcount for e in batch] == [3, 2, 2, 2] * 3
    for rounds in range(3):  # the batch's, the held ones', the stage's
        assert len(ours.consumer._acked[tp]) == (0, 0, 7)[rounds]  # 3..11 but 4 and 8
        ack_events(batch)
        for ev in one_by_one:
            ev.ack()
        assert state(ours, tp, batch) == state(theirs, tp2, one_by_one)
    assert sorted(ours.consumer._acked[tp]) == list(range(3, 12))
