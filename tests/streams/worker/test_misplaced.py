"""Events on another partition than murmur2 of their request id: joined where their request is
when this worker reads that partition, forwarded there otherwise; orphan feedback comes back
from the joiner for the dead letters once its window closes."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from streams.contracts.events import Feedback, encode
from streams.contracts.topics import partition_for, topic_names
from streams.join.joiner import Joiner
from streams.settings import Settings
from streams.worker.ingest import IngestStage
from streams.worker.metrics import build_metrics


class Message:
    def __init__(self, topic, partition, offset, key):
        self.topic, self.partition, self.offset, self.key = topic, partition, offset, key
        self.headers = [("h", b"1")]
        self.tp = (topic, partition)


class Event:
    def __init__(self, value, message):
        self.value, self.message = value, message


class Runtime:
    def __init__(self, settings):
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry)
        self.topics = topic_names(settings)
        self.sent = []

    def send(self, role, messages, partition=None, headers=None):
        self.sent += [(role, k, partition, headers) for k, _ in messages]

    async def write(self, table, rows):
        pass

    async def dead_letters(self, role, bad):
        assert not bad

    def observe(self, *a):
        pass


def test_misplaced_feedback_is_rerouted_or_forwarded(tmp_path):
    s = Settings(data_dir=tmp_path, partitions=4)
    rt = Runtime(s)
    topic = rt.topics["feedback"]
    rids = [f"r{i}" for i in range(40)]
    right = {r: partition_for(r.encode(), 4) for r in rids}
    wrong = {r: (right[r] + 1) % 4 for r in rids}  # every event on the next partition
    events = [Event(encode(Feedback(f"f{i}", 1.0, "t", r, "a", "impression")),
                    Message(topic, wrong[r], i, r.encode())) for i, r in enumerate(rids)]
    stage = IngestStage(rt, reads=lambda t, p: p in (0, 1))  # this worker reads 0 and 1
    valid = asyncio.run(stage.handle(events))["feedback"]
    joined = {rec.request_id: p for _, rec, p in valid}
    assert joined == {r: right[r] for r in rids if right[r] in (0, 1)}  # where its request is
    forwarded = {k.decode(): p for _, k, p, _ in rt.sent}
    assert forwarded == {r: right[r] for r in rids if right[r] not in (0, 1)}
    assert all(h == [("h", b"1")] for *_, h in rt.sent)  # headers kept
    get = rt.registry.get_sample_value
    assert get("aimass_events_misplaced_total", {"topic": "feedback", "action": "rerouted"}) \
        == len(joined)
    assert get("aimass_events_misplaced_total", {"topic": "feedback", "action": "forwarded"}) \
        == len(forwarded)


def test_orphan_feedback_comes_back_when_its_window_closes():
    j = Joiner(window=60)
    fb = Feedback("f1", 100.0, "t", "never", "a", "click")
    assert j.on_feedback(fb) == [] and j.drain_orphans() == []  # its window is open
    j.advance(200.0)
    assert j.drain_orphans() == [fb] and j.stats["orphan_feedback"] == 1
