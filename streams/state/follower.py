"""A thread that reads a compacted topic (model updates, model specs, tasks) from its beginning,
with no consumer group (every process sees every record), and hands each record to
:meth:`Follower.take`."""

from __future__ import annotations

import logging
import threading

from confluent_kafka import TopicPartition

from streams.contracts.topics import topic_names
from streams.state.checkpoints import large_consumer

log = logging.getLogger(__name__)


class Follower(threading.Thread):
    role = ""  # the topic's role in the catalogue

    def __init__(self, settings):
        super().__init__(daemon=True, name=self.role)
        self.settings = settings
        self.topic = topic_names(settings)[self.role]
        self.caught_up = threading.Event()
        self._halt = threading.Event()  # (Thread has a _stop of its own)

    def stop(self) -> None:
        self._halt.set()

    def take(self, key: bytes | None, value: bytes | None, offset: int = -1) -> None:
        raise NotImplementedError

    def run(self) -> None:
        c = large_consumer(self.settings, f"aimass-{self.role}-follower")
        try:
            c.assign([TopicPartition(self.topic, 0, 0)])
            while not self._halt.is_set():
                msgs = c.consume(10, 0.5)
                if not msgs:
                    self._check_caught_up(c)
                for m in msgs:
                    if not m.error():
                        self.take(m.key(), m.value(), m.offset())
        finally:
            c.close()

    def _check_caught_up(self, c) -> None:
        if self.caught_up.is_set():
            return
        try:
            _, high = c.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=2)
            pos = c.position([TopicPartition(self.topic, 0)])[0].offset
            if high == 0 or pos >= high:
                self.caught_up.set()
        except Exception as exc:  # asked again on the next idle poll
            log.info("%s position unknown yet: %s", self.topic, exc)

    def read_all(self, timeout: float = 15.0) -> None:
        """Start, read to the end of the topic, stop (a command's one-off view)."""
        self.start()
        try:
            if not self.caught_up.wait(timeout):
                raise TimeoutError(f"{self.topic} not read to its end in {timeout:.0f} s")
        finally:
            self.stop()
            self.join(5.0)
