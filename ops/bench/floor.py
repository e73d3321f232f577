"""The framework-free floor: the worker's own stages (decode and validate, ClickHouse rows,
score, join, learn, checkpoints) driven by a plain aiokafka ``getmany`` loop in one process,
no Faust. Beside the Faust pipeline in the same run, the ratio pipeline / floor is what the
framework costs, and floor / in-process what Kafka and the stages cost.

The loop keeps the worker's semantics: an event is acknowledged by the stages as in the
worker (the join once its request is released and its examples are on Kafka, the trainer
once a checkpoint holds it), and a partition's offset is committed up to its first event not
acknowledged. Run as a child by :mod:`ops.bench.learning` (``--modes floor``); settings come
from the environment (``AIMASS_*``).

    python -m ops.bench.floor
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client import start_http_server

from streams.contracts import batches
from streams.contracts.events import TrainingExample
from streams.contracts.example_batches import encode_examples
from streams.contracts.topics import topic_names
from streams.settings import Settings
from streams.worker.ingest import IngestStage
from streams.worker.join import JoinStage
from streams.worker.runtime import Runtime
from streams.worker.score import ScoreStage
from streams.worker.train import TrainStage

log = logging.getLogger(__name__)


class Message:
    """What the stages read of a Faust message, and its reference count."""

    __slots__ = ("topic", "partition", "offset", "key", "headers", "tp", "refs", "acks",
                 "timestamp")

    def __init__(self, record, acks):
        self.topic, self.partition, self.offset = record.topic, record.partition, record.offset
        self.timestamp = None if record.timestamp is None else record.timestamp / 1000.0
        self.key, self.headers = record.key, list(record.headers or [])
        self.tp = TopicPartition(record.topic, record.partition)
        self.refs, self.acks = 1, acks

    def incref(self, n: int = 1) -> None:
        self.refs += n


class _NoApp:
    consumer = None  # no Faust consumer: the stages acknowledge these events one by one


class Event:
    __slots__ = ("value", "message")
    app = _NoApp

    def __init__(self, record, acks):
        self.value, self.message = record.value, Message(record, acks)

    def ack(self) -> None:
        m = self.message
        m.refs -= 1
        if m.refs == 0:
            m.acks.acked(m.tp, m.offset)


class Acks:
    """Per partition: the offsets read and those acknowledged; what may be committed."""

    def __init__(self):
        self.read: dict = defaultdict(list)  # tp -> offsets in order
        self.done: dict = defaultdict(set)
        self.next: dict = {}  # tp -> the offset to commit

    def seen(self, tp, offset: int) -> None:
        self.read[tp].append(offset)

    def acked(self, tp, offset: int) -> None:
        self.done[tp].add(offset)

    def committable(self) -> dict:
        out = {}
        for tp, offsets in self.read.items():
            done, n = self.done[tp], 0
            while n < len(offsets) and offsets[n] in done:
                done.discard(offsets[n])
                n += 1
            if n:
                self.next[tp] = offsets[n - 1] + 1
                del offsets[:n]
                out[tp] = self.next[tp]
        return out


async def run(s: Settings) -> None:
    names = topic_names(s)
    rt = Runtime(s)
    start_http_server(s.web_port, "127.0.0.1", registry=rt.registry)  # /metrics, as a worker
    ingest, train = IngestStage(rt), TrainStage(rt)

    async def settled() -> None:
        await ingest.settle()
        await rt.confirm()

    join = JoinStage(rt, before_ack=settled)
    score = ScoreStage(rt, rt.snapshots())
    acks = Acks()
    consumer = AIOKafkaConsumer(
        names["ad-requests"], names["feedback"], names["training"], names["examples"],
        bootstrap_servers=s.kafka_bootstrap, group_id=s.app_id, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=s.batch_size,
        max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    await asyncio.to_thread(train.warm_up)
    rt.follow_snapshots()  # the score stage ranks with the trainer's snapshots, as the worker's
    rt.started()  # the worker's garbage-collector policy (streams.gcpause)
    rt.metrics.assigned.set(1)
    inputs = {names["ad-requests"], names["feedback"]}

    async def caught_up(role=None) -> bool:
        wanted = inputs if role is None else {names[role]}
        for tp in consumer.assignment():
            if tp.topic in wanted:
                end = consumer.highwater(tp)
                if end is None or await consumer.position(tp) < end:
                    return False
        return True

    async def idle_flush() -> None:  # apart from the checkpoints, as the worker's timers
        while True:
            await asyncio.sleep(1.0)
            join.partition_lag = {tp.partition: max((consumer.highwater(tp) or 0)
                                                    - await consumer.position(tp), 0)
                                  for tp in consumer.assignment()
                                  if tp.topic == names["ad-requests"]}
            for role in ("ad-requests", "feedback"):
                join.note_ends(role, {tp.partition: consumer.highwater(tp)
                                      for tp in consumer.assignment()
                                      if tp.topic == names[role]})
            await join.flush_idle(caught_up)

    async def housekeeping() -> None:
        while True:
            await asyncio.sleep(1.0)
            await train.maybe_checkpoint()
            offsets = acks.committable()
            if offsets:
                await consumer.commit(offsets)

    keeper = asyncio.gather(idle_flush(), housekeeping())
    try:
        while True:
            got = await consumer.getmany(timeout_ms=500, max_records=s.batch_size)
            events, examples, training = [], [], []
            for tp, records in got.items():
                for r in records:
                    acks.seen(tp, r.offset)
                    ev = Event(r, acks)
                    (examples if tp.topic == names["examples"] else training
                     if tp.topic == names["training"] else events).append(ev)
            if events:
                valid = await ingest.handle(events)
                await score.handle([rec for _, rec, _ in valid["ad-requests"]])
                await join.handle(valid, events)
                join.note_offsets(events)
                for ev in events:
                    ev.ack()  # the batch's own reference, as Faust's take_events drops it
            if training:
                good, bad = batches.decode_batch(TrainingExample,
                                                 [batches.Raw.of(e) for e in training],
                                                 time.time())
                await rt.dead_letters("training", bad)
                await rt.produce("examples", encode_examples(good))
                for ev in training:
                    ev.ack()
            if examples:
                await train.handle(examples)
                for ev in examples:
                    ev.ack()
            if keeper.done():
                keeper.result()
    finally:
        keeper.cancel()
        await consumer.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
