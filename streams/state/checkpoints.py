"""Trainer checkpoints in a compacted Kafka topic, one message per tenant (key = tenant).

Why Kafka and not ClickHouse: the checkpoint must be consistent with the consumer offsets, and
both live in the same broker; compaction keeps exactly the newest state per tenant; restoring
needs nothing but the broker the worker already depends on; ClickHouse is an analytics store
without transactions or cheap point reads of large blobs. States are signed state files
(:mod:`streams.state.statefile`; a full MovieLens model set: a few MB); the topic allows messages up
to 64 MiB.

Reading, each tenant's checkpoint is the signed one with the highest model version (then the
newest): a message that is not signed with this worker's key, or is in an old format, is
skipped, logged and counted, never read, and an old signed one produced again cannot roll a
tenant back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.contracts.topics import CHECKPOINT_MAX_BYTES, topic_names
from streams.producer import EventProducer
from streams.settings import Settings
from streams.state.statefile import StateRejected, verify

log = logging.getLogger(__name__)


@dataclass
class Rejected:
    """A state message that was not read."""

    topic: str
    offset: int
    key: str
    reason: str
    code: str


def large_producer(settings: Settings) -> EventProducer:
    """A producer for whole model states (up to 64 MiB, uncompressed: they are already); it
    waits out a Kafka outage of any length (no message timeout)."""
    return EventProducer(settings, compression_type="none",
                         message_max_bytes=CHECKPOINT_MAX_BYTES + 1024, message_timeout_ms=0)


def large_consumer(settings: Settings, group: str) -> Consumer:
    """A consumer that can fetch whole model states; it commits nothing."""
    return Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                     "enable.auto.commit": False,
                     "fetch.max.bytes": CHECKPOINT_MAX_BYTES + 1024,
                     "max.partition.fetch.bytes": CHECKPOINT_MAX_BYTES + 1024,
                     "receive.message.max.bytes": 2 * CHECKPOINT_MAX_BYTES})


class CheckpointStore:
    def __init__(self, settings: Settings, key: bytes):
        self.settings = settings
        self.key = key
        self.topic = topic_names(settings)["checkpoints"]
        self._producer: EventProducer | None = None

    def connect(self) -> None:
        if self._producer is None:
            self._producer = large_producer(self.settings)

    def save(self, tenant: str, state: bytes) -> None:
        """Write one tenant's signed state and wait until Kafka has it (however long)."""
        self.connect()
        self._producer.send_raw(self.topic, tenant.encode(), state)
        self._producer.flush(what="checkpoints")

    def load(self, timeout: float = 30.0) -> tuple[dict[str, bytes], list[Rejected]]:
        """Every tenant's checkpoint (signed state bytes) and the messages not read."""
        best: dict[str, tuple[tuple, bytes]] = {}
        rejected: list[Rejected] = []
        for offset, key, value in read_compacted(self.settings, self.topic, timeout):
            tenant = key.decode("utf-8", "replace") if key else ""
            if value is None:
                best.pop(tenant, None)
                continue
            try:
                header = verify(self.key, value, "checkpoint")
                if header.get("tenant") != tenant:
                    raise StateRejected(f"signed for tenant {header.get('tenant')!r}")
            except StateRejected as exc:
                log.error("checkpoint at %s offset %d (key %r) not read: %s", self.topic,
                          offset, tenant, exc.reason)
                rejected.append(Rejected(self.topic, offset, tenant, exc.reason, exc.code))
                continue
            rank = (header.get("model_version", 0), header.get("created_at", 0.0), offset)
            if tenant not in best or rank > best[tenant][0]:
                best[tenant] = (rank, value)
        return {t: v for t, (_, v) in best.items()}, rejected


def read_compacted(settings: Settings, topic: str, timeout: float = 30.0):
    """(offset, key, value) of every message of a one-partition topic, start to end."""
    c = large_consumer(settings, "aimass-checkpoint-reader")
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout)
        if high <= 0:
            return
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        pos = 0
        while pos < high and time.monotonic() < deadline:
            for m in c.consume(100, 1.0):
                if m.error():
                    raise RuntimeError(f"reading {topic}: {m.error()}")
                pos = m.offset() + 1
                yield m.offset(), m.key(), m.value()
        if pos < high:
            raise TimeoutError(f"read {topic} up to {pos} of {high} in {timeout}s")
    finally:
        c.close()
