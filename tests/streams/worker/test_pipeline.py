"""The learning pipeline through a real broker (Apache Kafka, then Tansu): quality is not lost in
the stream, and a worker killed with SIGKILL resumes with every example learned exactly once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from learners import registry
from learners.metrics import log_loss
from ops.bench.learning import examples_in_stream_order
from ops.bench.movielens_stream import click_stream
from ops.harness import WorkerProcess
from sinks.clickhouse import connect
from streams.contracts.features import DEFAULT_CROSSES
from streams.sources.replay import run_replay
from streams.state.checkpoints import CheckpointStore
from streams.state.model_sets import load_checkpoint
from streams.state.statefile import load_key
from tests.conftest import REPO

pytestmark = pytest.mark.services
MODELS = "ftrl,fm"


def pipeline_settings(fresh, **extra):
    return fresh.model_copy(update={"models": MODELS, "join_idle_flush": 2.0,
                                    "checkpoint_interval": 1.0, "holdout_fraction": 0.0,
                                    **extra})


def replay(s, limit, rate=None):
    return run_replay(s.model_copy(update={"data_dir": REPO / ".aimass"}), limit, rate)


def predictions(s, model):
    ch = connect(s.clickhouse_dsn)
    try:
        return ch.query(f"SELECT example_id, label, p FROM predictions FINAL "
                        f"WHERE model = '{model}'")
    finally:
        ch.close()


def test_stream_quality_matches_in_process_loop(fresh, tmp_path, movielens_dir):
    n = 4000
    s = pipeline_settings(fresh)
    worker = WorkerProcess(s, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        replay(s, n)
        worker.wait_for("aimass_checkpoint_examples", n, 300)
    finally:
        worker.stop()
    # the same examples in the same order: the examples topic (one partition, or it raises) as
    # the trainer read it, each id once
    exs = examples_in_stream_order(s)
    assert sorted(e.id for e in exs) == sorted(e.id for e in click_stream(REPO / ".aimass", n))
    X, y = [e.features for e in exs], [e.label for e in exs]
    for name in MODELS.split(","):
        rows = predictions(s, name)
        assert sorted(r[0] for r in rows) == sorted(e.id for e in exs)
        streamed = log_loss([r[1] for r in rows], [r[2] for r in rows])
        local = log_loss(y, registry.build([name], DEFAULT_CROSSES)[name].progressive_many(X, y))
        assert abs(streamed - local) < 0.003, (name, streamed, local)


def test_sigkill_mid_replay_learns_every_example_exactly_once(fresh, tmp_path, movielens_dir):
    n = 6000
    s = pipeline_settings(fresh)
    worker = WorkerProcess(s, tmp_path / "worker-1.log")
    worker.wait_ready()
    producer = threading.Thread(target=replay, args=(s, n, 1500.0))  # ~4 s of traffic
    producer.start()
    worker.wait_for("aimass_checkpoint_examples", 1500, 120)  # some learning is durable ...
    worker.wait_for("aimass_examples_learned_total", 2500, 120)  # ... and some is not yet
    worker.stop(kill=True)
    killed_at = time.monotonic()
    producer.join()

    worker = WorkerProcess(s, tmp_path / "worker-2.log")
    try:
        worker.wait_ready()
        worker.wait_for("aimass_checkpoint_examples", n, 300)
    finally:
        worker.stop()
    assert time.monotonic() - killed_at < 300

    key = load_key(s)
    states, rejected = CheckpointStore(s, key).load()
    assert not rejected
    ms = load_checkpoint(states["movielens"], key)
    assert ms.examples_learned == n and len(ms.learned) == n  # once each, earlier ones kept
    assert ms.metrics()["ftrl"]["examples"] == n
    for name in MODELS.split(","):
        rows = predictions(s, name)
        assert len({r[0] for r in rows}) == n
    exs = click_stream(REPO / ".aimass", n)
    assert {r[0] for r in predictions(s, "ftrl")} == {e.id for e in exs}
    assert np.isfinite(ms.metrics()["fm"]["logloss"])
