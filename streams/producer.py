"""A confluent-kafka producer for our events: murmur2 keys (same partitions as Java/aiokafka),
acks=all, idempotent, delivery counted; ``send`` waits out a full local queue instead of failing."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException, Producer

from .events import encode
from .settings import Settings


class EventProducer:
    def __init__(self, settings: Settings, **overrides: Any):
        conf = {
            "bootstrap.servers": settings.kafka_bootstrap,
            "partitioner": "murmur2_random",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "compression.type": "lz4",
        }
        conf.update({k.replace("_", "."): v for k, v in overrides.items()})
        self._p = Producer(conf)
        self.delivered = 0
        self.failed: list[str] = []

    def _on_delivery(self, err, msg) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed.append(f"{msg.topic()}: {err}")

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self._p.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                self._p.poll(0.05)
        self._p.poll(0)

    def send(self, topic: str, key: str, event: Any) -> None:
        self.send_raw(topic, key.encode(), encode(event))

    def flush(self, timeout: float = 60.0) -> None:
        left = self._p.flush(timeout)
        if left:
            raise KafkaException(f"{left} messages still undelivered after {timeout}s")
        if self.failed:
            raise KafkaException(f"{len(self.failed)} messages failed, first: {self.failed[0]}")
