"""Publishing snapshots (trainer side) and following them (serving side) on the compacted
``model-updates`` topic. A follower reads the topic from the beginning with no consumer group:
every replica sees every snapshot, and a new replica starts from the newest one per tenant."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from .checkpoint import large_consumer, large_producer
from .settings import Settings
from .snapshots import ModelStore, load_snapshot
from .topics import topic_names

log = logging.getLogger(__name__)


class SnapshotPublisher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = topic_names(settings)["model-updates"]
        self._p = None

    def publish(self, tenant: str, snapshot: bytes) -> None:
        if self._p is None:  # connects on first use, not when the stage is built
            self._p = large_producer(self.settings)
        self._p.send_raw(self.topic, tenant.encode(), snapshot)
        self._p.flush(60)


class SnapshotFollower(threading.Thread):
    """Background thread: load every snapshot that arrives and swap it into ``store``."""

    def __init__(self, settings: Settings, store: ModelStore,
                 on_swap: Callable[[str, int], None] | None = None):
        super().__init__(daemon=True, name="model-updates")
        self.settings, self.store, self.on_swap = settings, store, on_swap
        self.topic = topic_names(settings)["model-updates"]
        self._stop = threading.Event()
        self.caught_up = threading.Event()
        self.errors = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        c = large_consumer(self.settings, "aimass-serving-follower")
        try:
            c.assign([TopicPartition(self.topic, 0, 0)])
            while not self._stop.is_set():
                msgs = c.consume(10, 0.5)
                if not msgs:
                    self._check_caught_up(c)
                for m in msgs:
                    if m.error() or m.value() is None:
                        continue
                    try:
                        snap = load_snapshot(m.value())
                    except Exception as exc:  # a bad snapshot never takes the replica down
                        self.errors += 1
                        log.error("model update at offset %s unreadable: %s", m.offset(), exc)
                        continue
                    if self.store.swap(snap) and self.on_swap:
                        self.on_swap(snap.tenant, snap.version)
        finally:
            c.close()

    def _check_caught_up(self, c: Consumer) -> None:
        if self.caught_up.is_set():
            return
        try:
            _, high = c.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=2)
            pos = c.position([TopicPartition(self.topic, 0)])[0].offset
            if high == 0 or pos >= high:
                self.caught_up.set()
        except Exception:
            pass
