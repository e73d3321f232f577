"""The Faust app, top to bottom: build the app, declare the topics, one thin agent per stage.

  ad-requests ─┬─ ingest ──────────────► ClickHouse ad_requests   (bad ones: dead letters)
               ├─ score ───────────────► recommendations
               └─ join ─┐
  feedback ────┬─ ingest┼──────────────► ClickHouse feedback
               └─ join ─┴──────────────► examples
  training ─────── forward (validated) ► examples
  examples ─────── train ──────────────► models, checkpoints, ClickHouse examples/predictions

Agents take micro-batches and hand them to the stages (plain classes, Kafka-free logic in
:mod:`streams.joiner` and :mod:`streams.trainer`). A batch's offsets are acknowledged only after
its writes are done (the join and train stages hold them longer: see their modules).
"""

from __future__ import annotations

import asyncio
import time

import faust
from prometheus_client import generate_latest

from sinks import schema

from . import ingest
from .events import AdRequest, Feedback, TrainingExample, encode
from .join_stage import JoinStage
from .runtime import Runtime
from .score_stage import ScoreStage
from .settings import Settings
from .topics import catalogue, topic_names
from .train_stage import TrainStage

INGEST = {  # role -> (record, table, rows)
    "ad-requests": (AdRequest, schema.AD_REQUESTS, ingest.request_rows),
    "feedback": (Feedback, schema.FEEDBACK, ingest.feedback_rows),
}


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
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
        producer_max_request_size=8 * 1024 * 1024,
        # A join waits up to the rebalance timeout for members; Tansu waits it out in full.
        broker_rebalance_timeout=settings.group_rebalance_timeout,
        broker_session_timeout=max(settings.group_rebalance_timeout, 6.0),
        broker_heartbeat_interval=2.0,
    )


def create_app(settings: Settings) -> faust.App:
    app = _faust_app(settings)
    rt = Runtime(settings)
    app.aimass = rt  # shared state lives on the app, not in module globals
    topics = {spec.role: app.topic(spec.name(settings), partitions=spec.partitions,
                                   replicas=settings.replication, config=dict(spec.configs))
              for spec in catalogue(settings)}
    names = topic_names(settings)

    async def send(role: str, key: bytes, value: bytes) -> None:
        fut = await topics[role].send(key=key, value=value)
        await fut  # delivered (acks=all) before the caller acknowledges its input

    rt.send = send
    join, train = JoinStage(rt), TrainStage(rt)
    score = ScoreStage(rt, train)
    take = dict(max_=settings.batch_size, within=settings.batch_within)

    def ingest_agent(role: str):
        record, table, rows = INGEST[role]

        async def agent(stream):
            async for events in stream.take_events(**take):
                started = time.perf_counter()
                raws = [ingest.Raw(e.value, e.message.topic, e.message.partition,
                                   e.message.offset) for e in events]
                good, bad = ingest.decode_batch(record, raws, time.time())
                await rt.write(table, rows(good, int(time.time())))
                await rt.dead_letters(role, bad)
                rt.metrics.consumed.labels(role).inc(len(events))
                rt.observe(f"ingest-{role}", len(events), started)

        app.agent(topics[role], name=f"ingest_{role.replace('-', '_')}")(agent)

    for role in INGEST:
        ingest_agent(role)

    @app.agent(topics["ad-requests"], name="score")
    async def score_requests(stream):
        async for events in stream.take_events(**take):
            await score.handle(events)

    @app.agent(app.topic(names["ad-requests"], names["feedback"]), name="join")
    async def join_feedback(stream):
        async for events in stream.take_events(**take):
            await join.handle(events, names["ad-requests"])

    @app.agent(topics["training"], name="forward_training")
    async def forward_training(stream):
        async for events in stream.take_events(**take):
            raws = [ingest.Raw(e.value, e.message.topic, e.message.partition, e.message.offset)
                    for e in events]
            good, bad = ingest.decode_batch(TrainingExample, raws, time.time())
            await rt.dead_letters("training", bad)
            await asyncio.gather(*(send("examples", e.id.encode(), encode(e)) for e in good))
            rt.metrics.consumed.labels("training").inc(len(events))

    @app.agent(topics["examples"], name="train")
    async def train_examples(stream):
        async for events in stream.take_events(**take):
            await train.handle(events)

    @app.timer(interval=1.0)
    async def housekeeping():
        await join.flush_idle()
        await train.maybe_checkpoint()

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(rt.registry), content_type="text/plain; version=0.0.4")

    return app
