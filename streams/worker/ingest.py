"""The ingest stage: validate requests and feedback, land them in ClickHouse, dead-letter the
malformed with their reason. Returns the valid records for the next stages.

**Any producer's partitioner.** The join meets a request and its feedback on one partition, the
one Kafka's murmur2 gives for the request id. A client with another partitioner (librdkafka's
default, CRC32-based: kcat, confluent-kafka as shipped), or with no key, puts some events
elsewhere. Such an event is joined as if it had come on the partition murmur2 names
(``rerouted``) when this worker reads that partition too; otherwise it is forwarded there,
keyed by its request id, and skipped here (``forwarded``): it is stored, scored and joined when
it is read there. Both are counted in ``aimass_events_misplaced_total``. Either way it is
acknowledged, like every event, only once the join releases its place (a forward, once Kafka
confirmed it).

The ClickHouse writes go on behind the next stages (:class:`streams.worker.write_behind.WriteBehind`); the
join acknowledges events only after :meth:`IngestStage.settle` (their rows are written)."""

from __future__ import annotations

import time

from sinks import schema
from streams.contracts import batches
from streams.contracts.events import AdRequest, Feedback
from streams.contracts.topics import partitions_for
from streams.worker.runtime import Runtime
from streams.worker.write_behind import write_behind

ROLES = {  # role -> (record, table, rows)
    "ad-requests": (AdRequest, schema.AD_REQUESTS, batches.request_rows),
    "feedback": (Feedback, schema.FEEDBACK, batches.feedback_rows),
}


def join_key(role: str, rec) -> str:
    """What a request or a feedback is partitioned by: the request id."""
    return rec.id if role == "ad-requests" else rec.request_id


def misplaced(role: str, good: list[tuple[int, object]], partitions_of: list[int],
              n_partitions: int) -> list[tuple[int, int]]:
    """(index, right partition) of the valid records not on murmur2's partition of their
    request id. ``partitions_of[i]``: the partition record ``i`` was read from.

    >>> from streams.contracts.events import Feedback
    >>> from streams.contracts.topics import partition_for
    >>> partition_for(b"r1", 4), partition_for(b"r7", 4)
    (0, 3)
    >>> fb = lambda rid: Feedback("f", 1.0, "t", rid, "a", "click")
    >>> misplaced("feedback", [(0, fb("r1")), (1, fb("r7"))], [2, 3], 4)
    [(0, 0)]
    """
    if not good:
        return []
    right = partitions_for([join_key(role, rec).encode() for _, rec in good], n_partitions)
    return [(i, int(p)) for (i, _), p in zip(good, right.tolist(), strict=True)
            if partitions_of[i] != p]


class IngestStage:
    def __init__(self, runtime: Runtime, reads=lambda topic, partition: True):
        self.rt = runtime
        self.role_of = {runtime.topics[r]: r for r in ROLES}
        self.writes = write_behind(runtime)  # drained by the join before it acknowledges
        self.partitions = runtime.settings.partitions
        self.batch_size = runtime.settings.batch_size
        self.reads = reads  # does this worker read that topic partition?

    def warm_up(self) -> None:
        """Before the first batch (a thread): load the compiled partitioner (numba's cache),
        which the first batch paid for: 0.2 s of the profile of a replay's first seconds."""
        partitions_for([b"warm-up"], self.partitions)

    async def handle(self, events: list) -> dict[str, list]:
        """Validate and store a mixed batch; returns role -> [(event, record, partition)] of
        valid ones, ``partition`` the one the join meets it on. A batch short of
        ``batch_size`` means the input has nothing more now: its rows go in without waiting
        for others to gather (:meth:`~streams.worker.write_behind.WriteBehind.flush`)."""
        started = time.perf_counter()
        now = time.time()
        valid: dict[str, list] = {r: [] for r in ROLES}
        for role, (record, table, rows) in ROLES.items():
            mine = [e for e in events if self.role_of.get(e.message.topic) == role]
            if not mine:
                continue
            raws = [batches.Raw.of(e) for e in mine]
            good, bad = batches.decode_batch_indexed(record, raws, now)
            right = dict(misplaced(role, good, [r.partition for r in raws], self.partitions))
            away = {i: p for i, p in right.items() if not self.reads(raws[i].topic, p)}
            if away:
                self._forward(role, good, raws, away)
                good = [(i, rec) for i, rec in good if i not in away]
            if len(right) > len(away):
                self.rt.metrics.misplaced.labels(role, "rerouted").inc(len(right) - len(away))
            await self.writes.write(table, rows([rec for _, rec in good], int(now)))
            await self.rt.dead_letters(role, bad)
            valid[role] = [(mine[i], rec, right.get(i, raws[i].partition)) for i, rec in good]
            self.rt.metrics.consumed.labels(role).inc(len(mine))
        if len(events) < self.batch_size:
            self.writes.flush()
        self.rt.observe("ingest", len(events), started)
        return valid

    def _forward(self, role: str, good: list, raws: list, elsewhere: dict[int, int]) -> None:
        recs = dict(good)
        for i, partition in elsewhere.items():
            raw = raws[i]
            self.rt.send(role, [(join_key(role, recs[i]).encode(), raw.value)],
                         partition=partition, headers=raw.headers or None)
        self.rt.metrics.misplaced.labels(role, "forwarded").inc(len(elsewhere))

    async def settle(self) -> None:
        """Every row written so far is in ClickHouse."""
        await self.writes.drain()
