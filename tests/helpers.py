"""Helpers for the integration tests: drain a topic with a consumer group."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

KEY = b"a test state key"  # signs the states that tests make in-process


def consume_all(settings, topic: str, expected: int, group: str, timeout: float = 60.0,
                idle: float = 3.0) -> list:
    """Read ``topic`` with consumer group ``group`` until ``expected`` messages came and nothing
    more arrives for ``idle`` seconds (so duplicates would show), committing as it goes."""
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": True,
                  "session.timeout.ms": 6000})
    c.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = c.consume(1000, 0.5)
            for m in msgs:
                if m.error():
                    raise RuntimeError(m.error())
                out.append(m)
            if msgs:
                last = time.monotonic()
            elif len(out) >= expected and time.monotonic() - last > idle:
                break
    finally:
        c.close()
    return out


def end_offsets(settings, topic: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "offsets-probe"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        c.close()
