"""What the agents of one worker share: settings, metrics, ClickHouse sinks, the dead-letter
path, and the stages (join, train, score), each holding its own state. Lives on the app object,
never in module globals."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson
from prometheus_client import CollectorRegistry

from sinks import schema
from sinks.clickhouse import ClickHouse, connect
from sinks.exceptions import RetryableSinkError, SinkBackpressure
from sinks.table import TableSink
from streams.contracts import batches
from streams.contracts.events import DeadLetter, encode
from streams.contracts.topics import topic_names
from streams.gcpause import TimedFullCollections, freeze_startup, observe_pauses
from streams.producer import Delivery, EventProducer
from streams.serving.snapshots import ModelStore
from streams.settings import Settings
from streams.state.statefile import load_key
from streams.worker.metrics import Metrics, build_metrics, field_label

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics: Metrics = build_metrics(self.registry)
        self._ch: ClickHouse | None = None
        self._sinks: dict[str, TableSink] = {}
        self._producer: EventProducer | None = None
        self._delivery = Delivery()  # everything this worker sent
        self.topics = topic_names(settings)
        self.state_key = load_key(settings)
        self._frozen = False
        self._snapshots: ModelStore | None = None
        self._follower = None
        self._spec_follower = None
        self._tasks = None
        self.examples_partitions: set[int] = set()  # of the examples topic, assigned here
        # the consumer group's generation now (the app sets it; None: not checked)
        self.generation: Callable[[], int | None] = lambda: None

    def current(self, events: list) -> list:
        """The events fetched in the group's current generation. One fetched before a
        rebalance must be neither handled nor acknowledged now: its partition is read again
        from the committed offset, and Faust commits the first run of acknowledged offsets
        it holds, so acknowledging it early can commit past events not yet handled."""
        generation = self.generation()
        if generation is None:
            return events
        return [e for e in events if e.message.generation_id == generation]

    async def produce(self, role: str, messages: list[tuple[bytes, bytes]]) -> None:
        """Produce a batch (confluent-kafka: C, batched) and wait until every message is
        acknowledged by the broker, so the caller may then acknowledge its input."""
        if not messages:
            return
        self.send(role, messages)
        await self.confirm()

    def snapshots(self) -> ModelStore:
        """The newest snapshot per tenant, as serving replicas hold it: empty until
        :meth:`follow_snapshots` starts following the model-updates topic."""
        if self._snapshots is None:
            self._snapshots = ModelStore()
        return self._snapshots

    def follow_snapshots(self) -> None:
        """Start the thread that follows the model-updates topic into :meth:`snapshots`, once,
        when an agent that scores starts (not when the app is built: a CLI command builds the
        app and must not start consuming)."""
        if self._follower is None:
            from streams.state.model_updates import SnapshotFollower

            self._follower = SnapshotFollower(
                self.settings, self.snapshots(), self.state_key,
                on_reject=lambda code: self.metrics.state_rejected.labels("model-updates",
                                                                          code).inc())
            self._follower.start()

    def spec_records(self) -> dict:
        """Every tenant's model graph record (:mod:`streams.control.distribution`); empty
        until :meth:`follow_specs` has read them."""
        return {} if self._spec_follower is None else self._spec_follower.records

    def follow_specs(self) -> None:
        """Start the thread that follows the model-specs topic, once, when the agents start;
        it returns when that topic has been read to its end (or after 10 s), so that a trainer
        made now builds each tenant's own graph."""
        if self._spec_follower is None:
            from streams.control.distribution import SpecFollower

            self._spec_follower = SpecFollower(
                self.settings, self.state_key,
                on_reject=lambda code: self.metrics.state_rejected.labels("model-specs",
                                                                          code).inc())
            self._spec_follower.start()
            if not self._spec_follower.caught_up.wait(10.0):
                log.warning("model-specs not read to its end in 10 s: tenants start on the "
                            "default graph and are rebuilt when their own arrives")

    def run_tasks(self) -> None:
        """Start, once, the thread that runs the tasks this worker owns: those whose id falls
        on an examples partition assigned here (:mod:`streams.control.runner`)."""
        if self._tasks is not None:
            return
        import os
        import socket

        from streams.contracts.topics import partition_for
        from streams.control.jobs import handlers
        from streams.control.runner import TaskRunner
        from streams.control.tasks import TaskBoard, TaskLog

        board = TaskBoard(self.settings)
        board.start()
        parts = self.settings.partitions
        self._tasks = TaskRunner(
            board, TaskLog(self.settings),
            lambda t: partition_for(t.id.encode(), parts) in self.examples_partitions,
            handlers(self.settings, self.state_key), f"{socket.gethostname()}/{os.getpid()}")
        self._tasks.start()

    def started(self) -> None:
        """Once per process, when the agents start: what is alive now lives until exit, out
        of the garbage collector's way, and full collections run on a clock, timed for
        Grafana (streams.gcpause)."""
        if not self._frozen:
            self._frozen = True
            observe_pauses(self.registry)
            freeze_startup()
            TimedFullCollections(self.settings.gc_full_every,
                                 young=self.settings.gc_young_allocations).start()

    @property
    def producer(self) -> EventProducer:
        if self._producer is None:  # no message timeout: an outage is waited out
            self._producer = EventProducer(self.settings, linger_ms=5, message_timeout_ms=0)
        return self._producer

    def send(self, role: str, messages: list[tuple[bytes, bytes]],
             partition: int | None = None, headers: list | None = None) -> None:
        """Produce a batch without waiting for the broker: for output whose input is
        acknowledged later by another stage, which calls :meth:`confirm` first."""
        if not messages:
            return
        topic, producer = self.topics[role], self.producer
        for key, value in messages:
            producer.send_raw(topic, key, value, self._delivery, partition, headers)
        self.metrics.produced.labels(role).inc(len(messages))

    async def confirm(self) -> None:
        """Wait until everything sent so far is acknowledged by the broker, however long it
        is away (back-pressure: the agents wait). Raises :class:`DeliveryFailed` if Kafka
        refused a message for good: its input must not be acknowledged. Callers at the same
        time each wait for all of it: one may not return on the strength of another's flush
        in flight."""
        target = self._delivery.sent
        if self._producer is None or self._delivery.low >= target:
            self._delivery.raise_errors()
            return
        await asyncio.to_thread(self._producer.wait_low, self._delivery, target)
        self._delivery.raise_errors()

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

    async def write(self, table: schema.Table, rows: list[dict]) -> None:
        """Write one batch, waiting out back-pressure (the agent, hence its consumer, waits)
        however long ClickHouse is away. Rows ClickHouse can never take go to the dead
        letters with the column and the reason; the rest are written."""
        if not rows:
            return
        waited = 0.0
        while True:
            try:
                sink = await asyncio.to_thread(self.sink, table)
                report = await asyncio.to_thread(sink.write, rows)
                break
            except (SinkBackpressure, RetryableSinkError, OSError) as exc:
                wait = getattr(exc, "retry_after", 1.0)
                self.metrics.sink_backpressure.labels(table.name).inc()
                self.metrics.errors.labels("sink", "retryable").inc()
                if waited == 0.0 or int(waited + wait) // 30 > int(waited) // 30:
                    log.warning("ClickHouse %s: %s; retrying (waited %.0f s)", table.name, exc,
                                waited)
                waited += wait
                await asyncio.sleep(wait)
        self.metrics.sink_rows.labels(table.name).inc(report.written)
        if report.rejected:
            self.metrics.errors.labels("sink", "fatal_row").inc(len(report.rejected))
            now = time.time()
            batch = time.time_ns()  # each letter its own row in the dead-letter table
            letters = [DeadLetter(id=f"clickhouse:{table.name}/{batch}/{i}", event_time=now,
                                  source_topic=f"clickhouse:{table.name}", partition=-1,
                                  offset=-1, field=column or "", reason=reason,
                                  payload=orjson.dumps(row, default=str).decode())
                       for i, (row, column, reason) in enumerate(report.rejected)]
            await self.dead_letters("sink", letters, store=table is not schema.DEAD_LETTERS)

    async def dead_letters(self, role: str, bad: list[DeadLetter], store: bool = True) -> None:
        """Keep every bad event: in ClickHouse and on the dead-letter topic (with its original
        key and headers), before any ack."""
        if not bad:
            return
        if store:
            await self.write(schema.DEAD_LETTERS, batches.dead_letter_rows(bad))
        topic, producer = self.topics["dead-letters"], self.producer
        for d in bad:
            producer.send_raw(topic, d.kafka_key, encode(d), self._delivery,
                              headers=d.kafka_headers or None)
        self.metrics.produced.labels("dead-letters").inc(len(bad))
        await self.confirm()
        for d in bad:
            self.metrics.dead_letters.labels(role, field_label(d.field)).inc()

    async def waited(self, agent: str, batches):
        """``batches`` (an agent's stream of batches), timing how long the agent waits for
        each (``aimass_batch_wait_seconds``): an agent that waits is not the bottleneck."""
        hist = self.metrics.batch_wait.labels(agent)
        t = time.perf_counter()
        async for batch in batches:
            hist.observe(time.perf_counter() - t)
            yield batch
            t = time.perf_counter()

    def observe(self, stage: str, n: int, started: float) -> None:
        self.metrics.batch_size.labels(stage).observe(n)
        self.metrics.batch_seconds.labels(stage).observe(time.perf_counter() - started)

