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
import time
from typing import Any

from confluent_kafka import KafkaException, Producer

from streams.contracts.events import encode
from streams.settings import Settings

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """Kafka refused some messages of one call for good (the first error is in the text)."""


class Delivery:
    """The messages of one call (or of a worker's life): how many are not confirmed yet, what
    failed, and ``low``: every message sent before it is confirmed (Kafka confirms partitions
    in their own order, so a count alone would not tell)."""

    def __init__(self):
        self.sent = 0
        self.confirmed = 0
        self.low = 0
        self._ahead: set[int] = set()  # confirmed, with an earlier one still out
        self.errors: list[str] = []

    def _add(self) -> int:
        self.sent += 1
        return self.sent - 1

    def _on_delivery(self, seq: int, err, msg) -> None:
        self.confirmed += 1
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err}")
        if seq == self.low:
            self.low += 1
            while self.low in self._ahead:
                self._ahead.remove(self.low)
                self.low += 1
        else:
            self._ahead.add(seq)

    def raise_errors(self) -> None:
        if self.errors:
            raise DeliveryFailed(f"{len(self.errors)} of {self.sent} messages failed, first: "
                                 f"{self.errors[0]}")


POLL_EVERY = 64  # messages between two polls of the delivery reports while sending


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
        self._plain = self._callback(None)  # one callback for every message of no Delivery
        self._unpolled = 0  # messages queued since the last poll

    def _callback(self, delivery: Delivery | None, seq: int = -1):
        def on_delivery(err, msg) -> None:
            if err is None:
                self.delivered += 1
            else:
                self.errors += 1
                log.warning("Kafka refused a message to %s: %s", msg.topic(), err)
            if delivery is not None:
                delivery._on_delivery(seq, err, msg)
        return on_delivery

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 delivery: Delivery | None = None, partition: int | None = None,
                 headers: list | None = None) -> None:
        callback = self._plain if delivery is None else self._callback(delivery,
                                                                        delivery._add())
        extra = {} if partition is None else {"partition": partition}
        if headers:
            extra["headers"] = headers
        while True:
            try:
                self._p.produce(topic, value, key, on_delivery=callback, **extra)
                break
            except BufferError:  # the local queue is full: let librdkafka drain it
                self._p.poll(0.05)
        self._polled()

    def try_send_raw(self, topic: str, key: bytes | None, value: bytes | None) -> bool:
        """Queue one message without ever blocking; False when the local queue is full (Kafka
        away long enough to fill it): the caller counts what it drops."""
        try:
            self._p.produce(topic, value, key, on_delivery=self._plain)
        except BufferError:
            return False
        self._polled()
        return True

    def _polled(self) -> None:
        """Serve the delivery reports every :data:`POLL_EVERY` messages, not after each: a
        poll costs about what a produce does, and the waits and flushes poll anyway."""
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._unpolled = 0
            self._p.poll(0)

    def send(self, topic: str, key: str, event: Any, delivery: Delivery | None = None) -> None:
        self.send_raw(topic, key.encode(), encode(event), delivery)

    def wait(self, delivery: Delivery, timeout: float) -> None:
        """Until every message of ``delivery`` is confirmed or refused; raises
        :class:`DeliveryFailed` for refused ones and :class:`TimeoutError` past ``timeout``."""
        deadline = time.monotonic() + timeout
        while delivery.low < delivery.sent:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Kafka has not confirmed {delivery.sent - delivery.low} "
                                   f"of {delivery.sent} messages in {timeout:.0f}s")
            self._p.poll(min(left, 0.1))
        delivery.raise_errors()

    def wait_low(self, delivery: Delivery, target: int, what: str = "messages") -> None:
        """Until every message of ``delivery`` sent before the ``target``-th is confirmed or
        refused, however long Kafka is away (saying so every 30 s). Unlike :meth:`flush`,
        messages sent meanwhile are not waited for: under steady production a flush can
        wait for ever."""
        started = last_said = time.monotonic()
        while delivery.low < target:
            self._p.poll(0.02)
            now = time.monotonic()
            if now - last_said >= 30:
                log.warning("Kafka has not confirmed %d %s for %.0f s; waiting for it",
                            target - delivery.low, what, now - started)
                last_said = now

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
