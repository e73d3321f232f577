"""The framework-free floor's events go through the stages' acknowledgement as the worker's do."""

from types import SimpleNamespace

from ops.bench.floor import Acks, Event
from streams.worker.acks import ack_events


def record(offset: int):
    return SimpleNamespace(topic="t", partition=0, offset=offset, key=None, headers=None,
                           value=b"{}", timestamp=None)


def test_the_stages_acknowledgement_of_floor_events_makes_them_committable():
    acks = Acks()
    events = [Event(record(o), acks) for o in range(3)]
    for ev in events:
        acks.seen(ev.message.tp, ev.message.offset)
    events[1].message.incref()  # a stage holds the middle one
    ack_events(events)
    assert acks.committable() == {events[0].message.tp: 1}
    ack_events([events[1]])
    assert acks.committable() == {events[0].message.tp: 3}
