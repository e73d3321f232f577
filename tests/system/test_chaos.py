"""The chaos suite, on real Apache Kafka and ClickHouse of its own: outages, kills, poison and
forged state. Each test ends with every example learned exactly once (the learners' counts and
ClickHouse's FINAL counts), nothing lost or doubled, and recovery without a person: the worker
and replicas wait outages out by themselves; after a kill, the test only starts the process
again, as a supervisor would."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import uuid
import zlib

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ops import services
from ops.harness import WorkerProcess
from sinks.clickhouse import connect
from streams.contracts.events import DeadLetter, decode
from streams.contracts.topics import ensure_topics, partition_for, topic_names
from streams.producer import EventProducer
from streams.sources import movielens
from streams.sources.replay import replay
from tests.conftest import BACKENDS, REPO, free_port, make_settings
from tests.helpers import (
    call,
    consume_all,
    learned_once,
    log_tail,
    quiet,
    start_services,
    stop_service,
    wait_http,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.chaos, pytest.mark.timeout(240),
              pytest.mark.skipif("kafka" not in BACKENDS, reason="real Kafka not selected")]
TENANT = movielens.TENANT
MODELS = ("ftrl", "fm")


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Kafka and ClickHouse of this module only."""
    s = make_settings(tmp_path_factory.mktemp("chaos"), embedded=False)
    services.up(s, embedded=False, prometheus=False, echo=quiet)
    yield s
    services.down(s, echo=quiet)


@pytest.fixture
def chaos(own, tmp_path):
    tag = uuid.uuid4().hex[:8]
    start_services(own)  # a test that failed midway may have left one stopped
    s = own.model_copy(update={
        "topic_prefix": f"c{tag}", "app_id": f"c{tag}", "web_port": free_port(),
        "serving_port": free_port(), "models": ",".join(MODELS), "ensembles": "stacking",
        "holdout_fraction": 0.0, "checkpoint_interval": 1.0, "join_idle_flush": 2.0,
        "clickhouse_url": f"clickhouse://127.0.0.1:{own.clickhouse_tcp_port}/c{tag}"})
    ensure_topics(s)
    return s


def ml_events(n: int):
    ml = movielens.load(movielens.fetch(REPO / ".aimass"))
    return movielens.ad_stream(ml, n)


def run_replay(s, n: int, rate: float | None = None, live: bool = False):
    return replay(ml_events(n), EventProducer(s), topic_names(s), rate, live=live)


def replay_in_background(s, n: int, rate: float, live: bool = False):
    t = threading.Thread(target=run_replay, args=(s, n, rate, live), daemon=True)
    t.start()
    return t


def worker(s, tmp_path, name: str = "worker") -> WorkerProcess:
    w = WorkerProcess(s, tmp_path / f"{name}.log", loglevel="info")
    w.wait_ready()
    return w


def dead_letters(s, expected: int) -> list[DeadLetter]:
    msgs = consume_all(s, topic_names(s)["dead-letters"], expected, f"dl-{uuid.uuid4().hex[:6]}",
                       timeout=30)
    return [decode(DeadLetter, m.value()) for m in msgs]


def test_forged_state_on_both_topics_runs_nothing_and_the_old_model_keeps_serving(
        chaos, tmp_path):
    s = chaos
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    w = worker(s, tmp_path)
    replica = None
    try:
        run_replay(s, 1500)
        w.wait_for("aimass_checkpoint_examples", 1500, 120)
        replica = WorkerProcess.serving(s, tmp_path / "serve.log")
        url = f"http://127.0.0.1:{s.serving_port}"
        wait_http(url + "/readyz", 90)
        served = wait_until(lambda: call(url + "/models")[1]["tenants"].get(TENANT), 30,
                            "a served model")["version"]
        raw = Producer({"bootstrap.servers": s.kafka_bootstrap})
        names = topic_names(s)
        forged = [pickle.dumps(Payload()), zlib.compress(pickle.dumps(Payload()), 1),
                  b"AIMASS\x00\x01" + os.urandom(200)]
        for topic in (names["model-updates"], names["checkpoints"]):
            for payload in forged:
                raw.produce(topic, key=TENANT.encode(), value=payload)
        raw.flush(10)
        wait_until(lambda: replica.counter("aimass_state_rejected_total") >= 3, 30,
                   "the replica refusing the forged updates")
        assert call(url + "/models")[1]["tenants"][TENANT]["version"] == served
        status, body = call(url + "/recommend", {"tenant": TENANT, "user": {"user_id": "1"},
                                                 "candidates": [{"ad_id": "50"}]})
        assert status == 200 and body["model_version"] == served

        w.stop()  # a restart reads the checkpoints topic again, forged messages included
        w = worker(s, tmp_path, "worker-2")
        run_replay(s, 2500)  # 1,000 more: learning continues from the valid checkpoint
        w.wait_for("aimass_checkpoint_examples", 2500, 120)
        assert w.counter("aimass_state_rejected_total") >= 3
    finally:
        w.stop()
        if replica is not None:
            replica.stop()
    assert not marker.exists()
    learned_once(s, TENANT, 2500, MODELS)


def test_poison_stalls_nothing_and_loses_nothing(chaos, tmp_path):
    """A far-future event time (request and feedback), a feature of 1e308 on the training
    topic, a half-megabyte string: each is a dead letter naming its field; every other example is
    learned, and the API refuses the same values with a 400."""
    s = chaos
    names = topic_names(s)
    raw = Producer({"bootstrap.servers": s.kafka_bootstrap, "partitioner": "murmur2_random"})
    future = time.time() + 86400 * 365 * 100
    poison = [
        (names["ad-requests"], b"p1", {"id": "p1", "event_time": 2**32, "tenant": TENANT,
                                       "user": {}, "candidates": [{"ad_id": "a"}]}),
        (names["feedback"], b"p2", {"id": "p2", "event_time": future, "tenant": TENANT,
                                    "request_id": "p2", "ad_id": "a", "kind": "click"}),
        (names["training"], b"p3", {"id": "p3", "event_time": 1.0, "tenant": TENANT,
                                    "features": {"x": 1e308}, "label": 1}),
        (names["ad-requests"], b"p4", {"id": "p4", "event_time": 1.0, "tenant": TENANT,
                                       "user": {"bio": "x" * 500_000},
                                       "candidates": [{"ad_id": "a"}]}),
    ]
    w = worker(s, tmp_path)
    replica = WorkerProcess.serving(s, tmp_path / "serve.log")
    try:
        for topic, key, body in poison:
            raw.produce(topic, key=key, value=orjson.dumps(body))
        raw.flush(10)
        run_replay(s, 2000)
        w.wait_for("aimass_checkpoint_examples", 2000, 120)
        w.wait_for("aimass_dead_letters_total", len(poison), 30)
        url = f"http://127.0.0.1:{s.serving_port}"
        wait_http(url + "/readyz", 90)
        status, body = call(url + "/examples", raw=b'{"tenant": "movielens", "examples": '
                            b'[{"features": {"x": 1e308}, "label": 1}]}')
        assert status == 400 and body["field"] == "examples[0].features.x"
        status, body = call(url + "/recommend", {
            "tenant": TENANT, "user": {"user_id": "1"}, "event_time": 2**32,
            "candidates": [{"ad_id": "50"}]})
        assert status == 400 and body["field"] == "event_time"
        assert w.proc.poll() is None
        wait_until(lambda: sum(v for (n, lab), v in w.metrics().items()
                               if n == "aimass_consumer_lag") == 0, 30, "lag 0")
    finally:
        replica.stop()
        w.stop()
    letters = {d.key: d for d in dead_letters(s, len(poison))}
    assert letters["p1"].field == "event_time" and letters["p2"].field == "event_time"
    assert letters["p3"].field == "features.x" and letters["p4"].field == "user.bio"
    learned_once(s, TENANT, 2000, MODELS)


def test_broker_restart_mid_replay(chaos, tmp_path):
    s = chaos
    w = worker(s, tmp_path)
    try:
        producer = replay_in_background(s, 6000, 1500.0)
        w.wait_for("aimass_examples_learned_total", 1000, 60)
        stop_service(s, "kafka")
        time.sleep(15)
        start_services(s)
        producer.join(120)
        w.wait_for("aimass_checkpoint_examples", 6000, 150)
        assert w.proc.poll() is None, log_tail(w.log)
    finally:
        w.stop()
    learned_once(s, TENANT, 6000, MODELS)


def test_broker_down_longer_than_every_client_timeout(chaos, tmp_path):
    """95 s: past the consumer session (10 s), aiokafka's request timeout (40 s), librdkafka's
    socket timeout (60 s) and Faust's broker request timeout (90 s). The worker waits, a
    POST /examples meanwhile gets a 503 with Retry-After, and afterwards a 202."""
    s = chaos
    w = worker(s, tmp_path)
    replica = WorkerProcess.serving(s, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{s.serving_port}"
    body = {"tenant": TENANT, "examples": [{"id": "api-1", "features": {"u_user_id": "1"},
                                            "label": 1}]}
    try:
        wait_http(url + "/readyz", 90)
        run_replay(s, 2000)
        w.wait_for("aimass_examples_learned_total", 500, 60)
        stop_service(s, "kafka")
        status, _ = call(url + "/examples", body, timeout=30)
        assert status == 503
        time.sleep(95)
        assert w.proc.poll() is None, log_tail(w.log)
        start_services(s)
        wait_until(lambda: call(url + "/examples", body, timeout=30)[0] == 202, 60,
                   "POST /examples accepted again")
        w.wait_for("aimass_checkpoint_examples", 2001, 150)
        assert w.proc.poll() is None and replica.proc.poll() is None
    finally:
        replica.stop()
        w.stop()
    learned_once(s, TENANT, 2001, MODELS)


def test_clickhouse_down_mid_replay(chaos, tmp_path):
    s = chaos
    w = worker(s, tmp_path)
    try:
        producer = replay_in_background(s, 5000, 1500.0)
        w.wait_for("aimass_examples_learned_total", 1000, 60)
        stop_service(s, "clickhouse")
        time.sleep(20)
        start_services(s)
        producer.join(120)
        w.wait_for("aimass_checkpoint_examples", 5000, 150)
        assert w.counter("aimass_sink_backpressure_total") > 0
    finally:
        w.stop()
    learned_once(s, TENANT, 5000, MODELS)


def test_sigkill_of_the_worker_during_a_checkpoint_write(chaos, tmp_path):
    """The worker is killed the moment a checkpoint lands on Kafka, before its offsets are
    committed (between the state and its acknowledgement)."""
    s = chaos
    w = worker(s, tmp_path)
    topic = topic_names(s)["checkpoints"]
    probe = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "probe"})
    try:
        producer = replay_in_background(s, 6000, 1500.0)
        w.wait_for("aimass_checkpoint_examples", 500, 60)
        start = probe.get_watermark_offsets(TopicPartition(topic, 0), cached=False)[1]
        wait_until(lambda: probe.get_watermark_offsets(TopicPartition(topic, 0),
                                                       cached=False)[1] > start,
                   30, "a checkpoint", every=0.005)
        os.killpg(w.proc.pid, signal.SIGKILL)
        w.proc.wait(10)
        producer.join(120)
        w = worker(s, tmp_path, "worker-2")
        w.wait_for("aimass_checkpoint_examples", 6000, 150)
    finally:
        probe.close()
        w.stop()
    learned_once(s, TENANT, 6000, MODELS)


def test_sigkill_of_a_replica_during_a_model_swap(chaos, tmp_path):
    """Two replicas under load; one is killed while the new version arrives. The other answers
    every request; the killed one, started again, serves the newest version. (The replay is
    stamped with the present, on the clock of the requests the replicas log.)"""
    s = chaos.model_copy(update={"join_window": 5.0})
    w = worker(s, tmp_path)
    s2 = s.model_copy(update={"serving_port": free_port()})
    r1 = WorkerProcess.serving(s, tmp_path / "serve-1.log")
    r2 = WorkerProcess.serving(s2, tmp_path / "serve-2.log")
    urls = [f"http://127.0.0.1:{x.serving_port}" for x in (s, s2)]
    replies: list[int] = []
    stop = threading.Event()
    try:
        for u in urls:
            wait_http(u + "/readyz", 90)
        run_replay(s, 1000, live=True)
        w.wait_for("aimass_checkpoint_examples", 1000, 60)
        req = {"tenant": TENANT, "user": {"user_id": "1"}, "candidates": [{"ad_id": "50"}]}

        def load():  # 100 requests/s (each is logged to Kafka for the join)
            while not stop.is_set():
                replies.append(call(urls[1] + "/recommend", req)[0])
                time.sleep(0.01)

        t = threading.Thread(target=load)
        t.start()
        before = r1.counter("aimass_model_swaps_total")
        producer = replay_in_background(s, 3000, 2000.0, live=True)  # new versions come
        wait_until(lambda: r1.counter("aimass_model_swaps_total") > before, 30, "a swap")
        os.killpg(r1.proc.pid, signal.SIGKILL)
        r1.proc.wait(10)
        producer.join(60)
        w.wait_for("aimass_checkpoint_examples", 3000, 120)
        r1 = WorkerProcess.serving(s, tmp_path / "serve-1b.log")
        wait_http(urls[0] + "/readyz", 90)
        newest = call(urls[1] + "/models")[1]["tenants"][TENANT]["version"]
        wait_until(lambda: call(urls[0] + "/models")[1]["tenants"][TENANT]["version"]
                   == newest, 30, "the restarted replica on the newest version")
        stop.set()
        t.join()
    finally:
        stop.set()
        for p in (r1, r2, w):
            p.stop()
    assert replies and set(replies) == {200}
    learned_once(s, TENANT, 3000, MODELS)


def test_a_click_from_a_default_partitioner_client_joins(chaos, tmp_path):
    """Requests from our producer (murmur2), impressions and clicks from confluent-kafka as
    shipped (librdkafka's CRC32 partitioner): the worker joins the misplaced ones where their
    request is, every click becomes a positive, and feedback for a request that never came is
    a dead letter. (A second worker that does not read the right partition forwards them
    there: test_forwarding below.)"""
    s = chaos
    names = topic_names(s)
    ours = EventProducer(s)
    theirs = Producer({"bootstrap.servers": s.kafka_bootstrap})  # the default partitioner
    events = list(ml_events(800))
    clicks = sum(ev.click is not None for ev in events)
    moved = 0
    for ev in events:
        ours.send(names["ad-requests"], ev.request.id, ev.request)
        for fb in (ev.impression, ev.click):
            if fb is not None:
                theirs.produce(names["feedback"], key=fb.request_id.encode(),
                               value=orjson.dumps(fb))
    ours.flush(30)
    theirs.produce(names["feedback"], key=b"never-came", value=orjson.dumps(
        {"id": "orphan", "event_time": events[-1].request.event_time, "tenant": TENANT,
         "request_id": "never-came", "ad_id": "a", "kind": "click"}))
    theirs.flush(30)
    w = worker(s, tmp_path)
    try:
        w.wait_for("aimass_checkpoint_examples", 800, 120)
        moved = w.counter("aimass_events_misplaced_total")
        w.wait_for("aimass_dead_letters_total", 1, 60)
    finally:
        w.stop()
    assert moved > 0  # some feedback sat on another partition than murmur2's
    assert sum(partition_for(ev.request.id.encode(), s.partitions) != 0 for ev in events)
    ch = connect(s.clickhouse_dsn)
    try:
        assert ch.query(f"SELECT sum(label) FROM examples FINAL WHERE tenant = '{TENANT}'") \
            == [(clicks,)]
    finally:
        ch.close()
    [orphan] = [d for d in dead_letters(s, 1) if d.key == "never-came"]
    assert orphan.field == "request_id" and "late-click window" in orphan.reason
    learned_once(s, TENANT, 800, MODELS)


def test_a_second_worker_joins_mid_replay_then_leaves(chaos, tmp_path):
    """Scale-out under load: a second worker joins the group while the replay runs (the
    partitions are split between the two, mid-batch), then leaves (they come back); every
    example is learned exactly once."""
    s = chaos
    a = worker(s, tmp_path, "worker-a")
    b = None
    try:
        producer = replay_in_background(s, 6000, 1000.0)
        a.wait_for("aimass_examples_learned_total", 500, 60)
        b = worker(s.model_copy(update={"web_port": free_port()}), tmp_path, "worker-b")
        wait_until(lambda: a.counter("aimass_rebalances_total") >= 2, 60, "a rebalance")
        time.sleep(3)  # both consume for a while
        assert b.counter("aimass_events_consumed_total") > 0, "the second worker got nothing"
        b.stop()
        b = None
        producer.join(120)
        try:
            a.wait_for("aimass_checkpoint_examples", 6000, 150)
        except TimeoutError as exc:  # where were they lost: before the examples topic or after
            made = examples_made(s)
            raise AssertionError(f"{exc}; the examples topic holds {len(made)} distinct ids of "
                                 f"{TENANT}; requests with none: {unjoined(s, made)}") from None
    finally:
        if b is not None:
            b.stop()
        a.stop()
    learned_once(s, TENANT, 6000, MODELS)


def unjoined(s, made: set[str]) -> str:
    """The requests none of whose examples is on the examples topic, by partition: how many,
    and their first and last offsets."""
    rids = {m.split("/", 1)[0] for m in made}
    msgs = consume_all(s, topic_names(s)["ad-requests"], 1, f"diag-{time.monotonic_ns()}",
                       timeout=30, idle=2)
    lost: dict[int, list[int]] = {}
    for m in msgs:
        if m.key() is not None and m.key().decode() not in rids:
            lost.setdefault(m.partition(), []).append(m.offset())
    return ", ".join(f"p{p}: {len(o)} (offsets {min(o)}..{max(o)})"
                     for p, o in sorted(lost.items())) or "none"


def examples_made(s) -> set[str]:
    """Every example id of the tenant on the examples topic (what the joins produced)."""
    from streams.contracts.example_batches import decode_examples

    msgs = consume_all(s, topic_names(s)["examples"], 1, f"diag-{time.monotonic_ns()}",
                       timeout=30, idle=2)
    return {e.id for m in msgs for e in decode_examples(m.value())[0] if e.tenant == TENANT}
