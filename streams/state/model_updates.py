"""Publishing snapshots (trainer side) and following them (serving side) on the compacted
``model-updates`` topic. A follower reads the topic from the beginning with no consumer group:
every replica sees every snapshot, and a new replica starts from the newest one per tenant.

A snapshot is a signed state file (:mod:`streams.state.statefile`): one that is not signed with the
replica's key, is of an unknown version, or does not parse is logged, counted
(``on_reject``) and skipped; the replica keeps serving the model it has. Nothing in it is
executed."""

from __future__ import annotations

import logging
from collections.abc import Callable

from streams.contracts.topics import topic_names
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.settings import Settings
from streams.state.checkpoints import large_producer
from streams.state.follower import Follower
from streams.state.statefile import StateRejected

log = logging.getLogger(__name__)


class SnapshotPublisher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = topic_names(settings)["model-updates"]
        self._p = None

    def connect(self) -> None:
        if self._p is None:  # connects on first use, not when the stage is built
            self._p = large_producer(self.settings)

    def publish(self, tenant: str, snapshot: bytes) -> None:
        self.connect()
        self._p.send_raw(self.topic, tenant.encode(), snapshot)
        self._p.flush(what="model updates")


class SnapshotFollower(Follower):
    """Background thread: load every snapshot that arrives and swap it into ``store``."""

    role = "model-updates"

    def __init__(self, settings: Settings, store: ModelStore, key: bytes,
                 on_swap: Callable[[str, int], None] | None = None,
                 on_reject: Callable[[str], None] | None = None):
        super().__init__(settings)
        self.store, self.on_swap = store, on_swap
        self.key, self.on_reject = key, on_reject
        self.errors = 0

    def take(self, key: bytes | None, value: bytes | None, offset: int = -1) -> None:
        if value is None:  # a tombstone: nothing to swap in
            return
        tenant = (key or b"").decode("utf-8", "replace")
        try:
            snap = load_snapshot(value, self.key)
            if snap.tenant != tenant:
                raise StateRejected(f"signed for tenant {snap.tenant!r}, keyed {tenant!r}")
        except StateRejected as exc:  # never executed, never swapped in
            self.errors += 1
            log.error("model update at offset %s (key %r) not read: %s", offset, tenant,
                      exc.reason)
            if self.on_reject:
                self.on_reject(exc.code)
            return
        except Exception as exc:  # a bug of ours: logged and counted, the replica goes on
            self.errors += 1
            log.exception("model update at offset %s failed to load", offset)
            if self.on_reject:
                self.on_reject(type(exc).__name__)
            return
        if self.store.swap(snap) and self.on_swap:
            self.on_swap(snap.tenant, snap.version)
