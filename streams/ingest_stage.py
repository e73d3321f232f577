"""The ingest stage: validate requests and feedback, land them in ClickHouse, dead-letter the
malformed with their reason. Returns the valid records for the next stages.

The ClickHouse writes go on behind the next stages (:class:`streams.runtime.WriteBehind`); the
join acknowledges events only after :meth:`IngestStage.settle` (their rows are written)."""

from __future__ import annotations

import time

from sinks import schema

from . import ingest
from .events import AdRequest, Feedback
from .runtime import Runtime, WriteBehind

ROLES = {  # role -> (record, table, rows)
    "ad-requests": (AdRequest, schema.AD_REQUESTS, ingest.request_rows),
    "feedback": (Feedback, schema.FEEDBACK, ingest.feedback_rows),
}


class IngestStage:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.role_of = {runtime.topics[r]: r for r in ROLES}
        self.writes = WriteBehind(runtime)  # drained by the join before it acknowledges

    async def handle(self, events: list) -> dict[str, list]:
        """Validate and store a mixed batch; returns role -> [(event, record)] of valid ones."""
        started = time.perf_counter()
        now = time.time()
        valid: dict[str, list] = {r: [] for r in ROLES}
        for role, (record, table, rows) in ROLES.items():
            mine = [e for e in events if self.role_of.get(e.message.topic) == role]
            if not mine:
                continue
            raws = [ingest.Raw(e.value, e.message.topic, e.message.partition, e.message.offset)
                    for e in mine]
            good, bad = ingest.decode_batch_indexed(record, raws, now)
            await self.writes.write(table, rows([rec for _, rec in good], int(now)))
            await self.rt.dead_letters(role, bad)
            valid[role] = [(mine[i], rec) for i, rec in good]
            self.rt.metrics.consumed.labels(role).inc(len(mine))
        self.rt.observe("ingest", len(events), started)
        return valid

    async def settle(self) -> None:
        """Every row written so far is in ClickHouse."""
        await self.writes.drain()
