"""Consumer lag as the broker sees it: each partition's end offset minus the offset the worker
group has committed there. A stage that stops consuming stops committing, so its lag grows
however its own counters look (``aimass_consumer_lag``; the alert ``AimassConsumerLagGrowing``
in ops/prometheus/alerts.yml fires when it keeps growing).

>>> lag_of({("t", 0): 120, ("t", 1): 5}, {("t", 0): 100, ("t", 1): None})
{('t', 0): 20, ('t', 1): 5}
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

log = logging.getLogger(__name__)


def lag_of(ends: dict, committed: dict) -> dict:
    """Per partition: end - committed (nothing committed yet: the whole partition)."""
    return {tp: max(end - (committed.get(tp) or 0), 0) for tp, end in ends.items()}


class BrokerLag:
    """Reads end offsets and the group's committed offsets (it never joins the group)."""

    def __init__(self, bootstrap: str, group: str, partitions: dict[str, int]):
        self.partitions = partitions  # topic -> partition count
        self._c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                            "enable.auto.commit": False})
        self.last_committed: dict[tuple[str, int], int | None] = {}

    def measure(self, timeout: float = 5.0) -> dict[tuple[str, int], int]:
        tps = [TopicPartition(t, p) for t, n in self.partitions.items() for p in range(n)]
        committed = {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
                     for tp in self._c.committed(tps, timeout=timeout)}
        self.last_committed = committed
        ends = {(tp.topic, tp.partition):
                self._c.get_watermark_offsets(tp, timeout=timeout, cached=False)[1]
                for tp in tps}
        return lag_of(ends, committed)

    def close(self) -> None:
        self._c.close()
