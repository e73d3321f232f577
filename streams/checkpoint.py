"""Trainer checkpoints in a compacted Kafka topic, one message per tenant (key = tenant).

Why Kafka and not ClickHouse: the checkpoint must be consistent with the consumer offsets, and
both live in the same broker; compaction keeps exactly the newest state per tenant; restoring
needs nothing but the broker the worker already depends on; ClickHouse is an analytics store
without transactions or cheap point reads of large blobs. States are compressed (a full
MovieLens model set: a few MB); the topic allows messages up to 64 MiB.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from .producer import EventProducer
from .settings import Settings
from .topics import CHECKPOINT_MAX_BYTES, topic_names


def large_producer(settings: Settings) -> EventProducer:
    """A producer for whole model states (up to 64 MiB, uncompressed: they are already)."""
    return EventProducer(settings, compression_type="none",
                         message_max_bytes=CHECKPOINT_MAX_BYTES + 1024)


def large_consumer(settings: Settings, group: str) -> Consumer:
    """A consumer that can fetch whole model states; it commits nothing."""
    return Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                     "enable.auto.commit": False,
                     "fetch.max.bytes": CHECKPOINT_MAX_BYTES + 1024,
                     "max.partition.fetch.bytes": CHECKPOINT_MAX_BYTES + 1024,
                     "receive.message.max.bytes": 2 * CHECKPOINT_MAX_BYTES})


class CheckpointStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = topic_names(settings)["checkpoints"]
        self._producer: EventProducer | None = None

    def save(self, tenant: str, state: bytes) -> None:
        if self._producer is None:
            self._producer = large_producer(self.settings)
        self._producer.send_raw(self.topic, tenant.encode(), state)
        self._producer.flush(60)

    def load(self, timeout: float = 30.0) -> dict[str, bytes]:
        """The newest state of every tenant: read the topic from the start to its end."""
        c = large_consumer(self.settings, "aimass-checkpoint-reader")
        try:
            _, high = c.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=timeout)
            if high <= 0:
                return {}
            c.assign([TopicPartition(self.topic, 0, 0)])
            states: dict[str, bytes] = {}
            deadline = time.monotonic() + timeout
            pos = 0
            while pos < high and time.monotonic() < deadline:
                for m in c.consume(100, 1.0):
                    if m.error():
                        raise RuntimeError(f"reading checkpoints: {m.error()}")
                    pos = m.offset() + 1
                    if m.value() is None:
                        states.pop(m.key().decode(), None)
                    else:
                        states[m.key().decode()] = m.value()
            if pos < high:
                raise TimeoutError(f"read checkpoints up to {pos} of {high} in {timeout}s")
            return states
        finally:
            c.close()
