"""Real Prometheus scrapes a worker and a serving replica during a short replay and some
recommend calls; every query of every panel of the Grafana dashboard returns data."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from ops.harness import WorkerProcess
from ops.services import prometheus
from ops.services.proc import stop_pid
from tests.conftest import BACKENDS, REPO
from tests.helpers import call, wait_http

pytestmark = [pytest.mark.services,
              pytest.mark.skipif("kafka" not in BACKENDS, reason="needs the real backend")]
DASHBOARD = REPO / "ops" / "grafana" / "dashboards" / "aimass.json"


def panel_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] if p["type"] != "row"
            for t in p["targets"]]


def prom_query(port: int, expr: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_dashboard_is_valid_grafana_json():
    dash = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert rows == ["Traffic", "Latency", "Model quality", "Health", "Cluster"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    assert all(t["datasource"]["uid"] == "aimass-prometheus" for p in dash["panels"]
               if p["type"] != "row" for t in p["targets"])


def test_every_panel_query_returns_data(fresh, tmp_path):
    s = fresh.model_copy(update={"models": "ftrl,fm", "scrape_interval": "1s",
                                 "join_idle_flush": 2.0, "checkpoint_interval": 1.0})
    prom = prometheus.start(s)
    worker = WorkerProcess(s, tmp_path / "worker.log")
    serve = WorkerProcess.serving(s, tmp_path / "serve.log")
    try:
        worker.wait_ready()
        from streams.sources.replay import run_replay

        run_replay(s.model_copy(update={"data_dir": REPO / ".aimass"}), 3000, None, 0.0, 2,
                   malformed_every=100)
        worker.wait_for("aimass_checkpoint_examples", 1, 120)
        wait_http(f"http://127.0.0.1:{s.serving_port}/readyz", 60)
        body = {"tenant": "movielens", "user": {"user_id": "7", "gender": "F", "age": 30},
                "candidates": [{"ad_id": str(i), "features": {"genre": "Drama"}}
                               for i in range(1, 101)]}
        deadline = time.monotonic() + 60
        while call(f"http://127.0.0.1:{s.serving_port}/recommend", body)[1].get("fallback"):
            assert time.monotonic() < deadline, "the serving replica never got a model"
            time.sleep(0.5)
        for _ in range(30):
            assert call(f"http://127.0.0.1:{s.serving_port}/recommend", body)[0] == 200
        call(f"http://127.0.0.1:{s.serving_port}/recommend", {**body, "tenant": "new"})
        time.sleep(4)  # a few scrapes
        missing = []
        for title, expr in panel_queries():
            if not prom_query(s.prometheus_port, expr):
                missing.append((title, expr))
        assert not missing, missing
    finally:
        serve.stop()
        worker.stop()
        stop_pid(prom["pid"])
