"""The Faust driver's consumer: every record aiokafka returned is delivered or given back.

A model of aiokafka (:class:`FakeKafka`: positions move past what a fetch returns, each
rebalance makes a new assignment whose positions start at the committed offsets, a rewind or
a seek moves them) and of a stage (acknowledges what it gets in the current generation;
commits as Faust does, counting a recorded gap as acknowledged) runs the consumer's drain
turns through rebalances, seeks and given-up deliveries at random points. Nothing may be
committed that was not processed. Before the give-back, a fetch answered across a rebalance
was dropped and the offsets under it committed as a gap: the loss the second-worker chaos
test found.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.types import TP

from streams.worker.consumer import Consumer
from streams.worker.fetch import Fetched

TPS = tuple(TP("requests", p) for p in range(3))


class FakeKafka:
    """aiokafka as the consumer sees it: per-partition logs, positions, assignments."""

    def __init__(self, size: int, batch: int):
        self.size, self.batch = size, batch
        self.committed = dict.fromkeys(TPS, 0)
        self.assignment = None
        self.positions: dict = {}
        self.assign()

    def assign(self) -> None:
        if self.assignment is not None:
            self.assignment.active = False
        self.assignment = SimpleNamespace(active=True, tps=frozenset(TPS))
        self.positions = dict(self.committed)

    def fetch(self, active) -> Fetched:
        out = Fetched()
        out.assignment = self.assignment
        for tp in active:
            start = self.positions[tp]
            end = min(start + self.batch, self.size)
            if end > start:
                out[tp] = [SimpleNamespace(offset=o) for o in range(start, end)]
                self.positions[tp] = end
        return out


class FakeThread:
    def __init__(self, kafka: FakeKafka):
        self.kafka = kafka

    async def rewind(self, assignment, offsets) -> bool:
        if assignment is not self.kafka.assignment or not assignment.active:
            return False
        self.kafka.positions.update(offsets)
        return True


class Bare(Consumer):
    """The consumer with none of Faust's service machinery: only what its turns read."""

    should_stop = False

    def __init__(self, kafka: FakeKafka, rng: random.Random):
        self.kafka, self.rng = kafka, rng
        self.app = SimpleNamespace(
            consumer_generation_id=1, client_only=False,
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, end: None))
        self._thread = FakeThread(kafka)
        self._read_offset = defaultdict(lambda: None)
        self._committed_offset = {}
        self._buffered_partitions = set()
        self._commit_every = None
        self._n_acked = 0
        self.suspend_flow = asyncio.Event()
        self.scheduler = SimpleNamespace(
            iterate=lambda records: ((tp, r) for tp, rs in records.items() for r in rs))
        self.flow_active = True
        self.callback = self._deliver
        self.acked: dict = {tp: set() for tp in TPS}
        self.processed: dict = {tp: set() for tp in TPS}
        self.gaps: dict = {tp: set() for tp in TPS}
        self.seek_tasks: list = []

    # -- Faust's side, as the turns use it
    def _get_active_partitions(self):
        return set(TPS)

    def highwater(self, tp):
        return self.kafka.size

    def _to_message(self, tp, record):
        return SimpleNamespace(tp=tp, topic=tp, offset=record.offset,
                               generation_id=self.app.consumer_generation_id)

    async def sleep(self, seconds):
        await asyncio.sleep(0)

    async def wait(self, event):
        while not self.flow_active:
            await asyncio.sleep(0)

    async def seek_to_committed(self):
        self.kafka.positions = dict(self.kafka.committed)
        return dict(self.kafka.committed)

    async def _add_gap(self, tp, offset_from, offset_to):
        self.gaps[tp].update(range(offset_from, offset_to + 1))  # Faust: acknowledged

    async def _getmany(self, active_partitions, timeout):
        self.chaos("fetch")
        return self.kafka.fetch(active_partitions)

    async def wait_first(self, *waits):
        futures = [asyncio.ensure_future(w) for w in waits]
        done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            future.cancel()
        return SimpleNamespace(done=[w for w, f in zip(waits, futures, strict=True) if f in done])

    async def _deliver(self, message):
        if self.rng.random() < 0.03:  # the stream's buffer is full, and a rebalance comes
            self.flow_active = False
            self.suspend_flow.set()
            await asyncio.get_running_loop().create_future()  # never taken: given up
        if message.generation_id == self.app.consumer_generation_id:
            self.processed[message.tp].add(message.offset)
            self.acked[message.tp].add(message.offset)
        self.chaos("deliver")

    # -- the world around it
    def chaos(self, where: str) -> None:
        roll = self.rng.random()
        if roll < 0.04:
            self.rebalance(resume=self.rng.random() < 0.5)
        elif roll < 0.06 and where == "deliver":
            self.seek_tasks.append(asyncio.ensure_future(self.perform_seek()))

    def commit(self) -> None:
        """Faust's commit: up to the first offset neither acknowledged nor in a gap."""
        for tp in TPS:
            offset = self.kafka.committed[tp]
            while offset in self.acked[tp] or offset in self.gaps[tp]:
                offset += 1
            self.kafka.committed[tp] = offset

    def rebalance(self, resume: bool) -> None:
        self.flow_active = False
        self.commit()
        self.acked = {tp: set() for tp in TPS}
        self.gaps = {tp: set() for tp in TPS}
        self.app.consumer_generation_id += 1
        self.kafka.assign()
        for tp in TPS:
            self._read_offset[tp] = None  # as on_partitions_assigned does
        if resume:
            self.resume()

    def resume(self) -> None:
        self.flow_active = True
        self.suspend_flow.clear()


async def run(seed: int) -> Bare:
    kafka = FakeKafka(size=60, batch=7)
    consumer = Bare(kafka, random.Random(seed))
    for _ in range(2000):
        if not consumer.flow_active:
            consumer.resume()  # the rebalance ended
        await consumer._drain_once()
        await asyncio.gather(*consumer.seek_tasks)
        consumer.seek_tasks.clear()
        consumer.commit()
        if all(kafka.committed[tp] == kafka.size for tp in TPS):
            break
    if consumer._next is not None:
        await consumer._next
    return consumer


@pytest.mark.parametrize("seed", range(60))
def test_nothing_committed_that_was_not_processed(seed):
    consumer = asyncio.run(run(seed))
    for tp in TPS:
        committed = consumer.kafka.committed[tp]
        lost = sorted(set(range(committed)) - consumer.processed[tp])
        assert not lost, f"{tp}: committed {committed}, never processed {lost[:10]}"
        assert committed == consumer.kafka.size, f"{tp}: stalled at {committed}"


def test_a_fetch_answered_after_a_rebalance_is_delivered():
    """The fetch waited across the rebalance; aiokafka answered it from the new assignment
    (its positions at the committed offsets): its records are the ones to read now."""
    kafka = FakeKafka(size=20, batch=5)
    consumer = Bare(kafka, SimpleNamespace(random=lambda: 1.0))  # no chaos but this one
    consumer.chaos = lambda where: where == "fetch" and consumer.app.consumer_generation_id \
        == 1 and consumer.rebalance(resume=True)

    async def turn():
        await consumer._drain_once()
        await consumer._next

    asyncio.run(turn())
    assert consumer.processed == {tp: set(range(5)) for tp in TPS}
    assert not any(consumer.gaps.values())


def test_records_left_when_flow_stops_are_given_back():
    """Flow stopped after the third record with the assignment unchanged: the partition is
    rewound to the fourth, which the next fetch returns."""
    kafka = FakeKafka(size=20, batch=5)
    consumer = Bare(kafka, SimpleNamespace(random=lambda: 1.0))
    count = 0

    async def stop_after_three(message):
        nonlocal count
        count += 1
        consumer.processed[message.tp].add(message.offset)
        if count == 3:
            consumer.flow_active = False

    consumer.callback = stop_after_three

    async def turns():
        await consumer._drain_once()
        return dict(kafka.positions)

    positions = asyncio.run(turns())
    first = next(tp for tp in TPS if consumer.processed[tp])
    assert consumer.processed[first] == {0, 1, 2}
    # and the fetch in flight, started while the batch was delivered, is given back too
    assert positions == {tp: 3 if tp == first else 0 for tp in TPS}


def test_the_driver_producer_counts_its_buffer_as_faust_does():
    """The app's producer (``aimass://``) attaches the project's buffer: its size counts the
    pending messages as Faust's does, read without a settings lookup, for the threaded
    setting too."""
    import faust
    from faust.transport.producer import ProducerBuffer as FaustBuffer

    from streams.worker.consumer import ProducerBuffer

    for threaded in (False, True):
        app = faust.App(f"t{threaded}", broker="aimass://127.0.0.1:9",
                        producer_threaded=threaded)
        ours = app.producer.buffer
        assert isinstance(ours, ProducerBuffer) and ours.app is app
        assert ours.threaded is threaded
        theirs = FaustBuffer()
        theirs.app = app
        if threaded:
            ours.queue, theirs.queue = asyncio.Queue(), asyncio.Queue()
        for n in range(3):
            assert ours.size == theirs.size == n
            (ours.queue if threaded else ours.pending).put_nowait(n)
            (theirs.queue if threaded else theirs.pending).put_nowait(n)
