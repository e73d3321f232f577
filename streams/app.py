"""The Faust app: thin agents that move micro-batches between Kafka and plain functions.

Reads top to bottom: build the app, declare the topics, one agent per input topic. Each agent
takes a micro-batch, validates it (bad events go to the dead-letter topic with their reason),
writes the rows to ClickHouse, and only then lets Faust acknowledge (commit) the offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import faust
from prometheus_client import CollectorRegistry, generate_latest

from sinks import schema
from sinks.clickhouse import ClickHouse, connect
from sinks.table import SinkBackpressure, TableSink

from . import ingest
from .events import AdRequest, Feedback, TrainingExample, encode
from .metrics import Metrics, build_metrics
from .settings import Settings
from .topics import catalogue


@dataclass(frozen=True)
class Route:
    """How one input topic lands: its record type, its table, and the row builder."""

    role: str
    record: type
    table: schema.Table
    rows: Callable[[list, int], list[tuple]]


ROUTES = (
    Route("ad-requests", AdRequest, schema.AD_REQUESTS, ingest.request_rows),
    Route("feedback", Feedback, schema.FEEDBACK, ingest.feedback_rows),
    Route("training", TrainingExample, schema.EXAMPLES, ingest.example_rows),
)


class Runtime:
    """What the agents share in one worker process: settings, metrics, sinks (made lazily)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry):
        self.settings = settings
        self.registry = registry
        self.metrics: Metrics = build_metrics(registry)
        self._ch: ClickHouse | None = None
        self._sinks: dict[str, TableSink] = {}

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
        """Write one batch, waiting out back-pressure (the consumer is paused meanwhile)."""
        sink = await asyncio.to_thread(self.sink, table)
        while True:
            try:
                await asyncio.to_thread(sink.write, rows)
                self.metrics.sink_rows.labels(table.name).inc(len(rows))
                return
            except SinkBackpressure as bp:
                self.metrics.sink_backpressure.labels(table.name).inc()
                await asyncio.sleep(bp.retry_after)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{b}" for b in settings.kafka_bootstrap.split(",")],
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_max_poll_records=5000,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A join waits up to the rebalance timeout for members; Tansu waits it out in full.
        broker_rebalance_timeout=settings.group_rebalance_timeout,
        broker_session_timeout=max(settings.group_rebalance_timeout, 6.0),
        broker_heartbeat_interval=2.0,
    )
    runtime = Runtime(settings, CollectorRegistry())
    app.aimass = runtime  # the agents' shared state lives on the app, not in module globals

    topics = {
        spec.role: app.topic(spec.name(settings), partitions=spec.partitions,
                             replicas=settings.replication, config=dict(spec.configs))
        for spec in catalogue(settings)
    }
    dead_letters = topics["dead-letters"]

    async def handle(route: Route, events: list) -> None:
        started = time.perf_counter()
        now = time.time()
        raws = [ingest.Raw(e.value, e.message.topic, e.message.partition, e.message.offset)
                for e in events]
        good, bad = ingest.decode_batch(route.record, raws, now)
        if good:
            await runtime.write(route.table, route.rows(good, int(now)))
        if bad:
            await runtime.write(schema.DEAD_LETTERS, ingest.dead_letter_rows(bad))
            sent = [await dead_letters.send(key=d.source_topic.encode(), value=encode(d))
                    for d in bad]
            await asyncio.gather(*sent)  # the dead letters are on Kafka before we ack the batch
            for d in bad:
                runtime.metrics.dead_letters.labels(route.role, d.field).inc()
        m = runtime.metrics
        m.consumed.labels(route.role).inc(len(events))
        m.batch_size.labels(route.role).observe(len(events))
        m.batch_seconds.labels(route.role).observe(time.perf_counter() - started)

    def make_agent(route: Route) -> None:
        async def agent(stream):
            async for events in stream.take_events(settings.batch_size,
                                                   within=settings.batch_within):
                await handle(route, events)

        agent.__name__ = agent.__qualname__ = f"ingest_{route.role.replace('-', '_')}"
        app.agent(topics[route.role], name=agent.__name__)(agent)

    for route in ROUTES:
        make_agent(route)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(runtime.registry),
                         content_type="text/plain; version=0.0.4")

    return app
