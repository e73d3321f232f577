"""A serving replica, the process `aimass serve` runs: it warms its compiled kernels up,
follows the model updates, logs the requests it answers to Kafka and answers HTTP
(:mod:`streams.serving.api`) until stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from aiohttp import web
from prometheus_client import CollectorRegistry

from learners.hashing import FeatureHasher
from streams.contracts.features import request_features
from streams.gcpause import TimedFullCollections, freeze_startup, observe_pauses
from streams.serving.access import AccessControl
from streams.serving.api import METRICS, create_serving_app
from streams.serving.quotas import Quotas
from streams.serving.snapshots import ModelStore

log = logging.getLogger(__name__)
KEEPALIVE = 75.0


def warm_up(settings) -> None:
    """Load the compiled kernels (numba's on-disk cache, or compile them) before the first
    request: score one request by every output of a small model set of the configured kinds."""
    from streams.contracts.events import Candidate
    from streams.serving.snapshots import load_snapshot
    from streams.state.model_sets import snapshot_of
    from streams.training.trainer import warm_up as learn_warm_up

    ms = learn_warm_up(settings)
    key = b"warm-up"
    snap = load_snapshot(snapshot_of(ms, key), key)
    shared, items = request_features({"user_id": "1"}, {}, [  # an int column: its kernel too
        Candidate("1", {"year": 1990}), Candidate("2", {"year": 1995})])
    for output in snap.outputs():
        snap.score_request(shared, items, output, FeatureHasher())


async def run(settings, port: int, reuse_port: bool = False) -> None:
    """`aimass serve`: follow model updates, log requests to Kafka, answer HTTP until stopped.
    ``reuse_port``: bind with SO_REUSEPORT, beside the other replicas of
    :mod:`streams.serving.supervisor`."""
    from streams.cli.status import group_and_trainers
    from streams.contracts.topics import ensure_topics, topic_names
    from streams.control.audit import record
    from streams.control.distribution import SpecFollower, SpecPublisher
    from streams.control.tasks import TaskBoard, TaskLog
    from streams.producer import Delivery, EventProducer
    from streams.serving.cluster import ClusterView
    from streams.serving.graphs import Graphs
    from streams.serving.popularity import Popularity
    from streams.serving.tasks_api import TaskRoutes
    from streams.state.model_updates import SnapshotFollower
    from streams.state.statefile import load_key
    from streams.training.trainer import settings_spec

    ensure_topics(settings)
    await asyncio.to_thread(warm_up, settings)
    registry = CollectorRegistry()
    observe_pauses(registry)
    store = ModelStore()
    # the request log: keyed by request id it spreads over every partition, so a short linger
    # sends a batch of one or two messages per partition, each a request the broker handles
    # on the cores serving needs (500 req/s: p99 16 ms at 5 ms, 3.8 ms at 100 ms, the no-op's
    # 1.5 ms; ops/bench/serving.py). The worker joins clicks over seconds: 200 ms costs nothing.
    producer = EventProducer(settings, linger_ms=200, acks="1", enable_idempotence=False)
    example_producer = EventProducer(settings, linger_ms=1)
    requests_topic = topic_names(settings)["ad-requests"]
    answers_topic = topic_names(settings)["recommendations"]
    training_topic = topic_names(settings)["training"]
    access = AccessControl.from_file(settings.api_keys)
    key = load_key(settings)
    specs = SpecFollower(settings, key, on_reject=lambda code: rejected.labels(code).inc())
    board = TaskBoard(settings)
    quotas = Quotas.from_file(settings.tenants, int(os.environ.get("AIMASS_REPLICAS", "1")))
    quotas.overrides = lambda: specs.quotas
    graphs = Graphs(lambda: specs.records, settings_spec(settings),
                    SpecPublisher(settings, key).publish, lambda ev: record(settings, ev),
                    max_models=lambda tenant: quotas.limit(tenant, "max_models"))

    def log_examples(messages: list[tuple[bytes, bytes]]) -> None:
        """Send one call's examples and wait for exactly those (10 s at most): a failure of
        this call is this call's 503, never a later one's."""
        delivery = Delivery()
        for k, v in messages:
            example_producer.send_raw(training_topic, k, v, delivery)
        example_producer.wait(delivery, 10.0)
    if access.open:
        log.warning("no AIMASS_API_KEYS file: the API is open to every caller")
    # chdb is one process's: a replica reads popularity only from a ClickHouse server
    popularity = None if settings.embedded else Popularity(settings.clickhouse_dsn).start()
    app = create_serving_app(
        store, registry, settings.serving_model,
        request_log=lambda k, v: producer.try_send_raw(requests_topic, k, v),
        answer_log=lambda k, v: producer.try_send_raw(answers_topic, k, v),
        popularity=popularity, ready=lambda: follower.caught_up.is_set(), access=access,
        example_log=log_examples,
        quotas=quotas, max_lag=settings.serving_max_lag,
        max_in_flight=settings.serving_max_in_flight,
        graphs=graphs, cluster=ClusterView(
            lambda: group_and_trainers(settings, settings.cluster_worker_urls()), store,
            f"{socket.gethostname()}:{port}/{os.getpid()}", board.all),
        tasks=TaskRoutes(board, TaskLog(settings), lambda ev: record(settings, ev)))
    swaps = app[METRICS].swaps
    rejected = app[METRICS].state_rejected
    follower = SnapshotFollower(settings, store, key,
                                on_swap=lambda t, v: swaps.labels(t).inc(),
                                on_reject=lambda code: rejected.labels(code).inc())
    follower.start()
    specs.start()
    board.start()
    # an idle keep-alive connection is closed after KEEPALIVE s (aiohttp's default is an hour)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE)
    await runner.setup()
    await web.TCPSite(runner, settings.bind_host, port, reuse_port=reuse_port or None).start()
    freeze_startup()  # what lives from here on is out of the collector's way (streams.gcpause)
    TimedFullCollections(settings.gc_full_every).start()
    log.info("serving on http://%s:%d (openapi: /openapi.json)", settings.bind_host, port)
    try:
        await asyncio.Event().wait()
    finally:
        follower.stop()
        specs.stop()
        board.stop()
        producer.flush(5)
        await runner.cleanup()
