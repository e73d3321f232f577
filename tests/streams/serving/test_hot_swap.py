"""Serving replicas follow the model-updates topic: under a steady request load, a new model
version is published; no request fails, and within seconds every reply carries the new
version. Two replicas beside each other both get it."""

from __future__ import annotations

import threading
import time

import pytest

from ops.harness import WorkerProcess
from streams.state.model_sets import snapshot_of
from streams.state.model_updates import SnapshotPublisher
from streams.state.statefile import load_key
from tests.conftest import free_port
from tests.helpers import BODY, call, trained_snapshot, wait_http

pytestmark = pytest.mark.services


def test_hot_swap_under_load(fresh, tmp_path):
    replicas = [WorkerProcess.serving(fresh, tmp_path / "serve-1.log"),
                WorkerProcess.serving(fresh.model_copy(update={"serving_port": free_port()}),
                                      tmp_path / "serve-2.log")]
    urls = [f"http://127.0.0.1:{r.port}" for r in replicas]
    try:
        publisher = SnapshotPublisher(fresh)
        ms = trained_snapshot(n=900, version_batches=3)  # v3
        key = load_key(fresh)
        publisher.publish("acme", snapshot_of(ms, key))
        for u in urls:
            wait_http(u + "/readyz", 90)
            deadline = time.monotonic() + 30
            while call(u + "/recommend", BODY)[1].get("model_version") != "acme:v3":
                assert time.monotonic() < deadline, "v3 never served"
                time.sleep(0.2)

        replies: list[tuple[float, int, str]] = []
        stop = threading.Event()

        def load(u):
            while not stop.is_set():
                status, r = call(u + "/recommend", BODY)
                replies.append((time.monotonic(), status, r.get("model_version", "")))

        threads = [threading.Thread(target=load, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        time.sleep(2)
        from learners.checks import stream

        X, y = stream(300, seed=99)
        from streams.contracts.events import TrainingExample

        ms.process([TrainingExample(f"n{i}", 1.0, "acme", X[i], y[i]) for i in range(300)])
        assert ms.version == 4
        published = time.monotonic()
        publisher.publish("acme", snapshot_of(ms, key))
        time.sleep(8)
        stop.set()
        for t in threads:
            t.join()
    finally:
        for r in replicas:
            r.stop()

    assert replies and all(s == 200 for _, s, _ in replies), "a request failed"
    new = [t for t, _, v in replies if v == "acme:v4"]
    assert new, "no reply carried the new version"
    first_new = min(new)
    assert first_new - published < 5.0
    after = [v for t, _, v in replies if t > first_new + 1.0]
    assert after and set(after) == {"acme:v4"}  # both replicas swapped, none went back
    assert {v for _, _, v in replies} <= {"acme:v3", "acme:v4"}
