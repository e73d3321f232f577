"""The stages' view of a worker, faked: events that count their acknowledgements, a runtime
with metrics and slow sinks, a checkpoint store in memory."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from streams.contracts.example_batches import encode_examples
from streams.contracts.topics import topic_names
from streams.settings import Settings
from streams.worker.metrics import build_metrics
from streams.worker.runtime import Runtime
from streams.worker.train import TrainStage
from tests.helpers import KEY


class FakeMessage:
    def __init__(self, offset: int):
        self.topic, self.partition, self.offset = "examples", 0, offset
        self.tp = ("examples", 0)
        self.key, self.headers = None, []
        self.refs = 1
        self.generation_id = 1
        self.timestamp = None  # Kafka's, in seconds: the tests that need one set it

    def incref(self):
        self.refs += 1


class FakeEvent:
    app = SimpleNamespace(consumer=None)  # not the worker's consumer: acknowledged one by one

    def __init__(self, offset: int, value: bytes, acked: list):
        self.message, self.value, self._acked = FakeMessage(offset), value, acked

    def ack(self):
        self.message.refs -= 1
        if self.message.refs == 0:
            self._acked.append(self)


class FakeRuntime:
    """The stage's view of a worker: settings, metrics, and sinks that take a while."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry)
        self.topics = topic_names(settings)
        self.state_key = KEY
        self.group_generation = 1
        self.specs: dict = {}  # tenant -> SpecRecord, as the model-specs follower holds them

    def spec_records(self):
        return self.specs

    def follow_specs(self):
        pass

    def run_tasks(self):
        pass

    def generation(self):
        return self.group_generation

    def current(self, events):
        return Runtime.current(self, events)

    async def write(self, table, rows):
        await asyncio.sleep(0.01)

    async def produce(self, role, messages):
        await asyncio.sleep(0.01)

    async def dead_letters(self, role, bad):
        assert not bad

    def observe(self, stage, n, started):
        pass


class SlowStore:
    """Checkpoints in memory; saving takes long enough for the agent to run meanwhile."""

    def __init__(self):
        self.saved: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def save(self, tenant: str, state: bytes) -> None:
        time.sleep(0.2)
        with self.lock:
            self.saved[tenant] = state

    def load(self):
        return dict(self.saved), []


class NoPublisher:
    def publish(self, tenant, snapshot):
        pass


def stage(tmp_path) -> TrainStage:
    s = Settings(data_dir=tmp_path, models="ftrl", holdout_fraction=0.0,
                 checkpoint_interval=3600.0)
    st = TrainStage(FakeRuntime(s))
    st.store, st.publisher = SlowStore(), NoPublisher()
    return st


def fake_events(exs, acked: list, start: int = 0) -> list[FakeEvent]:
    """Examples as consumed events at offsets start, start + 1, ..."""
    return [FakeEvent(start + i, encode_examples([e])[0][1], acked) for i, e in enumerate(exs)]


def two_windows(acked: list):
    """Two requests of one partition, each with an impression: r2 closes r1's window (10 s).
    Returns the events (acknowledged into ``acked``) and the stage's ``valid``."""
    from streams.contracts.events import AdRequest, Candidate, Feedback

    recs = [AdRequest("r1", 100.0, "t", {"user_id": "u"}, [Candidate("a")]),
            Feedback("r1-i", 101.0, "t", "r1", "a", "impression"),
            AdRequest("r2", 200.0, "t", {"user_id": "u"}, [Candidate("a")]),
            Feedback("r2-i", 201.0, "t", "r2", "a", "impression")]
    events = [FakeEvent(i, b"", acked) for i in range(len(recs))]
    for ev in events:
        ev.message.tp = ("requests", 0)
    valid = {"ad-requests": [(e, r, 0) for e, r in zip(events, recs, strict=True)
                             if isinstance(r, AdRequest)],
             "feedback": [(e, r, 0) for e, r in zip(events, recs, strict=True)
                          if isinstance(r, Feedback)]}
    return events, valid
