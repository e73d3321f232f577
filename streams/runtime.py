"""What the agents of one worker share: settings, metrics, ClickHouse sinks, the dead-letter
path, and the stages (join, train, score), each holding its own state. Lives on the app object,
never in module globals."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from prometheus_client import CollectorRegistry

from sinks import schema
from sinks.clickhouse import ClickHouse, connect
from sinks.table import SinkBackpressure, TableSink

from . import ingest
from .events import DeadLetter
from .metrics import Metrics, build_metrics
from .producer import EventProducer
from .settings import Settings
from .topics import topic_names


class Runtime:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics: Metrics = build_metrics(self.registry)
        self._ch: ClickHouse | None = None
        self._sinks: dict[str, TableSink] = {}
        self._producer: EventProducer | None = None
        self._sent = self._confirmed = 0  # messages sent / known delivered
        self.topics = topic_names(settings)

    async def produce(self, role: str, messages: list[tuple[bytes, bytes]]) -> None:
        """Produce a batch (confluent-kafka: C, batched) and wait until every message is
        acknowledged by the broker, so the caller may then acknowledge its input."""
        if not messages:
            return
        self.send(role, messages)
        await self.confirm()

    def send(self, role: str, messages: list[tuple[bytes, bytes]]) -> None:
        """Produce a batch without waiting for the broker: for output whose input is
        acknowledged later by another stage, which calls :meth:`confirm` first."""
        if not messages:
            return
        if self._producer is None:
            self._producer = EventProducer(self.settings, linger_ms=5)
        topic = self.topics[role]
        for key, value in messages:
            self._producer.send_raw(topic, key, value)
        self._sent += len(messages)
        self.metrics.produced.labels(role).inc(len(messages))

    async def confirm(self) -> None:
        """Wait until everything sent so far is acknowledged by the broker (raises if any
        message failed: its input must not be acknowledged). Callers at the same time each
        wait for all of it: one may not return on the strength of another's flush in flight."""
        target = self._sent
        if self._producer is None or self._confirmed >= target:
            return
        await asyncio.to_thread(self._producer.flush, 60.0)
        self._confirmed = max(self._confirmed, target)

    @property
    def ch(self) -> ClickHouse:
        if self._ch is None:
            self._ch = connect(self.settings.clickhouse_dsn)
            schema.create_schema(self._ch)
        return self._ch

    def sink(self, table: schema.Table) -> TableSink:
        if table.name not in self._sinks:
            self._sinks[table.name] = TableSink(self.ch, table)
        return self._sinks[table.name]

    async def write(self, table: schema.Table, rows: list[tuple]) -> None:
        """Write one batch, waiting out back-pressure (the agent, hence its consumer, waits)."""
        if not rows:
            return
        sink = await asyncio.to_thread(self.sink, table)
        while True:
            try:
                await asyncio.to_thread(sink.write, rows)
                self.metrics.sink_rows.labels(table.name).inc(len(rows))
                return
            except SinkBackpressure as bp:
                self.metrics.sink_backpressure.labels(table.name).inc()
                await asyncio.sleep(bp.retry_after)

    async def dead_letters(self, role: str, bad: list[DeadLetter]) -> None:
        """Keep every bad event: in ClickHouse and on the dead-letter topic, before any ack."""
        if not bad:
            return
        from .events import encode

        await self.write(schema.DEAD_LETTERS, ingest.dead_letter_rows(bad))
        await self.produce("dead-letters", [(d.source_topic.encode(), encode(d)) for d in bad])
        for d in bad:
            self.metrics.dead_letters.labels(role, d.field).inc()

    def observe(self, stage: str, n: int, started: float) -> None:
        self.metrics.batch_size.labels(stage).observe(n)
        self.metrics.batch_seconds.labels(stage).observe(time.perf_counter() - started)


class WriteBehind:
    """Sink writes that proceed while the stage goes on to its next batch (ClickHouse inserts
    release the GIL: they run on another core). At most ``max_pending`` writes are in flight;
    a further one waits for the oldest (back-pressure reaches the consumer). :meth:`drain`
    waits for all of them: a stage calls it before acknowledging the events they came from."""

    def __init__(self, runtime: Runtime, max_pending: int = 4):
        self.rt = runtime
        self.max_pending = max_pending
        self.pending: deque[asyncio.Task] = deque()

    async def write(self, table: schema.Table, rows: list[tuple]) -> None:
        if not rows:
            return
        while len(self.pending) >= self.max_pending:
            await self.pending.popleft()
        self.pending.append(asyncio.ensure_future(self.rt.write(table, rows)))

    async def drain(self) -> None:
        while self.pending:
            await self.pending.popleft()
