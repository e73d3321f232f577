"""A confluent-kafka producer for our events: murmur2 keys (same partitions as Java/aiokafka),
acks=all, idempotent; ``send`` waits out a full local queue instead of failing.

Deliveries are tracked per call, never globally: :meth:`EventProducer.send_raw` takes an
optional :class:`Delivery` that counts the messages of one call and their failures, so one
failed message never fails a later, unrelated call. :meth:`EventProducer.wait` waits for a
delivery with a deadline (the API answers 503 past it); :meth:`EventProducer.flush` waits for
everything sent, however long Kafka is away (the worker: back-pressure, never a crash).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaException, Producer

from streams.contracts.events import encode
from streams.settings import Settings

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """Kafka refused some messages of one call for good (the first error is in the text)."""


class Delivery:
    """The messages of one call: how many are not confirmed yet, and what failed."""

    def __init__(self):
        self.sent = 0
        self.confirmed = 0
        self.errors: list[str] = []
        self._done = threading.Event()
        self._done.set()

    def _add(self) -> None:
        self.sent += 1
        self._done.clear()

    def _on_delivery(self, err, msg) -> None:
        self.confirmed += 1
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err}")
        if self.confirmed >= self.sent:
            self._done.set()

    @property
    def pending(self) -> int:
        return self.sent - self.confirmed

    def raise_errors(self) -> None:
        if self.errors:
            raise DeliveryFailed(f"{len(self.errors)} of {self.sent} messages failed, first: "
                                 f"{self.errors[0]}")


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
            "message.max.bytes": 16 * 1024 * 1024,
        }
        conf.update({k.replace("_", "."): v for k, v in overrides.items()})
        self._p = Producer(conf)
        self.delivered = 0
        self.errors = 0

    def _callback(self, delivery: Delivery | None):
        def on_delivery(err, msg) -> None:
            if err is None:
                self.delivered += 1
            else:
                self.errors += 1
                log.warning("Kafka refused a message to %s: %s", msg.topic(), err)
            if delivery is not None:
                delivery._on_delivery(err, msg)
        return on_delivery

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 delivery: Delivery | None = None, partition: int | None = None,
                 headers: list | None = None) -> None:
        if delivery is not None:
            delivery._add()
        extra = {} if partition is None else {"partition": partition}
        if headers:
            extra["headers"] = headers
        while True:
            try:
                self._p.produce(topic, value=value, key=key, on_delivery=self._callback(delivery),
                                **extra)
                break
            except BufferError:  # the local queue is full: let librdkafka drain it
                self._p.poll(0.05)
        self._p.poll(0)

    def try_send_raw(self, topic: str, key: bytes | None, value: bytes | None) -> bool:
        """Queue one message without ever blocking; False when the local queue is full (Kafka
        away long enough to fill it): the caller counts what it drops."""
        try:
            self._p.produce(topic, value=value, key=key, on_delivery=self._callback(None))
        except BufferError:
            return False
        self._p.poll(0)
        return True

    def send(self, topic: str, key: str, event: Any, delivery: Delivery | None = None) -> None:
        self.send_raw(topic, key.encode(), encode(event), delivery)

    def wait(self, delivery: Delivery, timeout: float) -> None:
        """Until every message of ``delivery`` is confirmed or refused; raises
        :class:`DeliveryFailed` for refused ones and :class:`TimeoutError` past ``timeout``."""
        deadline = time.monotonic() + timeout
        while delivery.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Kafka has not confirmed {delivery.pending} of "
                                   f"{delivery.sent} messages in {timeout:.0f}s")
            self._p.poll(min(left, 0.1))
        delivery.raise_errors()

    def flush(self, timeout: float | None = None, what: str = "messages") -> None:
        """Wait until everything sent is confirmed or refused. With ``timeout`` None (the
        worker), wait as long as Kafka is away, saying so every 30 s; otherwise raise
        :class:`KafkaException` past it."""
        started = last_said = time.monotonic()
        while True:
            left = self._p.flush(5.0 if timeout is None else max(timeout, 0.0))
            if not left:
                return
            now = time.monotonic()
            if timeout is not None:
                raise KafkaException(f"{left} {what} still undelivered after {timeout}s")
            if now - last_said >= 30:
                log.warning("Kafka has not confirmed %d %s for %.0f s; waiting for it", left,
                            what, now - started)
                last_said = now

    def __len__(self) -> int:
        return len(self._p)
