"""The Faust app, top to bottom: build the app, declare the topics, one thin agent per stage.

  ad-requests ─┐  ingest ─► ClickHouse ad_requests, feedback (bad ones: dead letters)
  feedback ────┴► score ──► recommendations
                  join ───► examples
  training ─────── forward (validated) ► examples
  examples ─────── train ──────────────► models, checkpoints, ClickHouse examples/predictions

Agents take micro-batches and hand them to the stages (plain classes, Kafka-free logic in
:mod:`streams.join` and :mod:`streams.training`). A batch's offsets are acknowledged only
after its writes are done (the join and train stages hold them longer: see their modules).

An agent that raises takes the worker down (:func:`crash_worker`): logged, counted, then the
process exits non-zero for its supervisor (systemd, Kubernetes, compose) to restart it. Faust
would otherwise mark the agent crashed and keep the process up without it. Nothing it had not
finished is acknowledged, so the restarted worker reads it again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time

import faust
from faust.transport.drivers import TRANSPORTS
from prometheus_client import generate_latest

from sinks import schema
from streams.contracts import batches
from streams.contracts.events import TrainingExample
from streams.contracts.example_batches import encode_examples
from streams.contracts.topics import catalogue, topic_names
from streams.control.audit import AuditEvent, audit_rows
from streams.settings import Settings
from streams.worker.consumer import Consumer as DriverConsumer
from streams.worker.ingest import IngestStage
from streams.worker.join import JoinStage
from streams.worker.lag import BrokerLag
from streams.worker.runtime import Runtime
from streams.worker.schema import Schema as RawSchema
from streams.worker.score import ScoreStage
from streams.worker.stream import Stream as BatchStream
from streams.worker.train import TrainStage

log = logging.getLogger(__name__)
CRASH_EXIT = 70  # EX_SOFTWARE
CRASH_GRACE = 20.0  # seconds for a graceful stop before the hard exit
# a highwater older than this is not taken as "read to the end" (fetches are answered every
# 50 ms or sooner while the consumer runs: see streams.worker.consumer)
FRESH_HIGHWATER = 1.0


def _log_failure(rt: Runtime, what: str):
    """A done-callback: a background step's exception logged and counted (its caller does
    not wait for it)."""
    def done(task) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("%s failed (it is tried again when needed): %s", what, exc)
            rt.metrics.errors.labels(what, type(exc).__name__).inc()
    return done


def crash_worker(app: faust.App, rt: Runtime, name: str):
    """Decorator for an agent's body: any exception stops the worker (see the module doc)."""
    def wrap(fn):
        @functools.wraps(fn)
        async def agent(stream):
            rt.started()  # the first agent to start freezes the startup heap (streams.gcpause)
            try:
                await fn(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                rt.metrics.errors.labels(f"agent:{name}", "crash").inc()
                log.critical("agent %s failed; the worker stops so that its supervisor "
                             "restarts it (what it had not finished is not acknowledged)",
                             name, exc_info=exc)
                # a hard exit if the graceful stop hangs (the state on Kafka is consistent)
                threading.Timer(CRASH_GRACE, os._exit, (CRASH_EXIT,)).start()
                await app.crash(exc)
                raise
        return agent
    return wrap


def _faust_app(settings: Settings) -> faust.App:
    # the entry point registers it when aimass is installed; a source checkout needs this
    TRANSPORTS.aliases.setdefault("aimass", "streams.worker.consumer:Transport")
    if settings.faust_driver not in ("aimass", "kafka"):
        raise ValueError(f"AIMASS_FAUST_DRIVER must be aimass or kafka, not "
                         f"{settings.faust_driver!r}")
    return faust.App(
        settings.app_id,
        broker=[f"{settings.faust_driver}://{b}" for b in settings.kafka_bootstrap.split(",")],
        # batch agents take their batches in one pass (streams/worker/stream.py)
        Stream=BatchStream if settings.faust_driver == "aimass" else faust.Stream,
        # raw topics decode to their bytes without the serializer registry (schema.py)
        Schema=RawSchema if settings.faust_driver == "aimass" else faust.Schema,
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_host="127.0.0.1",
        web_bind=settings.bind_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_max_poll_records=5000,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=8 * 1024 * 1024,
        # held (unacknowledged) events are replayed after a restart and deduplicated by id:
        # shutting down need not wait for them
        stream_wait_empty=False,
        # several agents read the same topics; a small per-stream buffer makes the fastest
        # wait for the slowest at every batch
        stream_buffer_maxsize=settings.stream_buffer,
        # A join waits up to the rebalance timeout for members; Tansu waits it out in full.
        broker_rebalance_timeout=settings.group_rebalance_timeout,
        broker_session_timeout=max(settings.group_rebalance_timeout, 6.0),
        broker_heartbeat_interval=2.0,
    )


def create_app(settings: Settings) -> faust.App:
    app = _faust_app(settings)
    rt = Runtime(settings)
    rt.generation = lambda: app.consumer_generation_id
    app.aimass = rt  # shared state lives on the app, not in module globals
    topics = {spec.role: app.topic(spec.name(settings), partitions=spec.partitions,
                                   replicas=settings.replication, config=dict(spec.configs))
              for spec in catalogue(settings)}
    names = topic_names(settings)

    take = dict(max_=settings.batch_size, within=settings.batch_within)
    def reads(topic: str, partition: int) -> bool:
        return any(tp.topic == topic and tp.partition == partition
                   for tp in app.consumer.assignment())

    ingest_, train = IngestStage(rt, reads), TrainStage(rt)

    async def settled() -> None:  # what ingest and score did without waiting is durable
        await ingest_.settle()
        await rt.confirm()

    join = JoinStage(rt, before_ack=settled)
    score = ScoreStage(rt, rt.snapshots())

    @app.agent(app.topic(names["ad-requests"], names["feedback"]), name="events")
    @crash_worker(app, rt, "events")
    async def events(stream):
        """Requests and feedback: store, score, join, in one pass over each batch."""
        rt.follow_snapshots()
        await asyncio.to_thread(ingest_.warm_up)
        async for batch in rt.waited("events", stream.take_events(**take)):
            valid = await ingest_.handle(batch)
            await score.handle([rec for _, rec, _ in valid["ad-requests"]])
            await join.handle(valid, batch)
            join.note_offsets(batch)

    @app.agent(topics["training"], name="forward_training")
    @crash_worker(app, rt, "forward_training")
    async def forward_training(stream):
        """Users' labelled rows, validated, join the example stream."""
        async for batch in rt.waited("forward_training", stream.take_events(**take)):
            raws = [batches.Raw.of(e) for e in batch]
            good, bad = batches.decode_batch(TrainingExample, raws, time.time())
            await rt.dead_letters("training", bad)
            await rt.produce("examples", encode_examples(good))
            rt.metrics.consumed.labels("training").inc(len(batch))

    @app.agent(topics["audit"], name="audit")
    @crash_worker(app, rt, "audit")
    async def audit_trail(stream):
        """Admin actions, into ClickHouse's audit table."""
        async for batch in rt.waited("audit", stream.take_events(**take)):
            good, bad = batches.decode_batch(AuditEvent, [batches.Raw.of(e) for e in batch],
                                             time.time())
            await rt.dead_letters("audit", bad)
            await rt.write(schema.AUDIT, audit_rows(good, int(time.time())))
            rt.metrics.consumed.labels("audit").inc(len(batch))

    @app.agent(topics["examples"], name="train")
    @crash_worker(app, rt, "train")
    async def train_examples(stream):
        await asyncio.to_thread(train.warm_up)
        async for batch in rt.waited("train", stream.take_events(**take)):
            await train.handle(batch)

    inputs = (names["ad-requests"], names["feedback"])
    role_of = {names[role]: role for role in ("ad-requests", "feedback")}
    watched = {names["ad-requests"]: settings.partitions, names["feedback"]: settings.partitions,
               names["training"]: settings.partitions, names["examples"]: settings.partitions}
    broker = {"lag": None, "committed": {}, "at": 0.0}

    def handled(tp) -> int:
        """The next offset of ``tp`` still to handle: what its stage has seen, or what the
        group has committed (after a restart, before any event)."""
        stage = train if tp.topic == names["examples"] else join
        return max(stage.next_offset.get(tp, 0), broker["committed"].get(tp.topic, {}).get(
            tp.partition, 0))

    async def caught_up(role: str | None = None) -> bool:
        """Has the join handled every message its request/feedback partitions (or those of
        one input role) hold?"""
        wanted = inputs if role is None else (names[role],)
        consumer, now = app.consumer, time.time()
        for tp in consumer.assignment():
            if tp.topic in wanted:
                end = consumer.highwater(tp)
                if end is None or handled(tp) < end:
                    return False
                if isinstance(consumer, DriverConsumer):  # the stock driver cannot tell
                    polled = consumer.last_poll(tp)
                    if polled is None or now - polled > FRESH_HIGHWATER:
                        return False  # rebalancing, or the broker away: old news
        return True

    def note_unread() -> None:
        request_lag, ends = {}, {role: {} for role in role_of.values()}
        for tp in app.consumer.assignment():
            end, role = app.consumer.highwater(tp), role_of.get(tp.topic)
            if end is None or role is None:
                continue
            ends[role][tp.partition] = end
            if role == "ad-requests":
                request_lag[tp.partition] = max(end - handled(tp), 0)
        join.partition_lag = request_lag  # how far behind each partition's requests are
        if isinstance(app.consumer, DriverConsumer):  # its end offsets are as fresh as its
            for role, by_partition in ends.items():  # polls (``caught_up`` checks them)
                join.note_ends(role, by_partition)

    def broker_lag() -> None:
        """The truth about lag: end offsets against the group's commits (a thread)."""
        if broker["lag"] is None:
            broker["lag"] = BrokerLag(settings.kafka_bootstrap, settings.app_id, watched)
        lags = broker["lag"].measure()
        committed: dict = {}
        for (topic, partition), lag in lags.items():
            rt.metrics.lag.labels(topic, str(partition)).set(lag)
        for (topic, partition), off in broker["lag"].last_committed.items():
            committed.setdefault(topic, {})[partition] = off or 0
        broker["committed"] = committed

    @app.timer(interval=1.0)
    async def join_housekeeping():
        """The idle flush on a timer of its own: a checkpoint that takes seconds (sealing,
        saving, publishing) does not hold the last windows of a quiet stream open."""
        note_unread()
        await join.flush_idle(caught_up)

    @app.timer(interval=1.0)
    async def housekeeping():
        if time.monotonic() - broker["at"] >= 5.0:
            broker["at"] = time.monotonic()
            try:
                await asyncio.to_thread(broker_lag)
            except Exception as exc:  # the broker away: the gauges keep their last values
                rt.metrics.errors.labels("lag", "retryable").inc()
                log.info("consumer lag not measured: %s", exc)
        await train.sync_specs()
        await train.maybe_checkpoint()

    @app.on_partitions_assigned.connect
    async def on_assigned(app_, assigned, **kwargs):
        """A batch of the former generation that reached a stage between the revocation
        and now was not recognisable as stale yet: let go of it too."""
        await let_go()
        rt.metrics.assigned.set(len(assigned))
        rt.examples_partitions = {tp.partition for tp in assigned
                                  if tp.topic == names["examples"]}
        if any(tp.topic == names["examples"] for tp in assigned):
            # a trainer restores its tenants now, not at its next example: one that was
            # handed tenants whose examples were all learned says so (gauges, status) at once
            restoring = asyncio.ensure_future(asyncio.to_thread(lambda: train.trainer))
            restoring.add_done_callback(_log_failure(rt, "restore"))

    @app.on_partitions_revoked.connect
    async def on_revoked(app_, revoked, **kwargs):
        """The group rebalances (every partition is revoked, then assigned anew): what the
        stages hold of them is let go, unacknowledged; whoever gets a partition reads it again
        from its committed offset, and a trainer restores its tenants from their checkpoints
        (an id learned before is skipped)."""
        rt.examples_partitions = set()  # tasks stop at their next chunk, unmarked
        await let_go()
        rt.metrics.rebalances.inc()

    async def let_go() -> None:
        await join.on_rebalance()
        await train.on_rebalance()

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(rt.registry), content_type="text/plain; version=0.0.4")

    return app
