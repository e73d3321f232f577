"""A tenant's model graph, applied with `aimass models apply` while a worker learns and a replica
serves, on the real services: the worker rebuilds the tenant's models without a restart and the
replica then serves the new graph, ranking by the output the spec names."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from ops.harness import WorkerProcess, settings_env
from sinks.clickhouse import connect
from tests.helpers import PHISHING, aimass

pytestmark = [pytest.mark.services, pytest.mark.control]

SPEC = """
members:
  ftrl: {kind: ftrl}              # as in the default graph: it keeps what it learned
  ad: {kind: adpredictor}
ensembles:
  pair: {kind: average, over: [ftrl, ad]}
serve: ensemble_pair
"""
LIVE_WITHIN = 10.0  # seconds from `models apply` to the new graph served (issue 14)


def served(settings, tenant: str) -> dict | None:
    url = f"http://127.0.0.1:{settings.serving_port}/models"
    try:
        return orjson.loads(urllib.request.urlopen(url, timeout=2).read())["tenants"].get(tenant)
    except OSError:
        return None


def wait_served(settings, tenant, outputs, timeout=120.0) -> dict:
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        seen = served(settings, tenant)
        if seen is not None and seen["outputs"] == outputs:
            return seen
        time.sleep(0.5)
    raise TimeoutError(f"{tenant} served {seen and seen['outputs']}, not {outputs}")


def test_a_graph_applied_while_the_worker_runs_reaches_serving(fresh, tmp_path):
    s = fresh.model_copy(update={"models": "ftrl", "ensembles": "average",
                                 "checkpoint_interval": 1.0})
    env = settings_env(s)
    worker = WorkerProcess(s, tmp_path / "worker.log", loglevel="info")
    replica = WorkerProcess.serving(s, tmp_path / "serve.log")
    try:
        worker.wait_ready()
        res = aimass("train", str(PHISHING), "--label", "is_phishing", "--tenant", "sec", env=env)
        assert res.returncode == 0, res.stderr
        before = wait_served(s, "sec", ["ftrl", "ensemble_average"])
        assert before["default"] == "ftrl"  # the stacking the setting names is not there: first

        spec = tmp_path / "sec.yaml"
        spec.write_text(SPEC)
        learned = before["metrics"]["ftrl"]["examples"]
        assert learned > 1000
        applied = time.monotonic()  # (the command's own start-up counted too: an upper bound)
        res = aimass("models", "apply", str(spec), "--tenant", "sec", env=env)
        assert res.returncode == 0, res.stderr
        assert "model graph v1 applied" in res.stdout
        after = wait_served(s, "sec", ["ftrl", "ad", "ensemble_pair"])
        took = time.monotonic() - applied
        print(f"new graph served {took:.1f} s after apply ({s.kafka_bootstrap})")
        assert took <= LIVE_WITHIN, f"served {took:.1f} s after apply"
        assert after["default"] == "ensemble_pair"
        assert after["metrics"]["ftrl"]["examples"] >= learned  # kept, not reset
        # and it learns on: the same rows again are new ids for the file's second copy
        copy = tmp_path / "phishing-again.csv.gz"
        copy.write_bytes(PHISHING.read_bytes())
        res = aimass("train", str(copy), "--label", "is_phishing", "--tenant", "sec", env=env)
        assert res.returncode == 0, res.stderr
        deadline = time.monotonic() + 120
        while (now := served(s, "sec")) is None or \
                now["metrics"].get("ad", {}).get("examples", 0) < 1000:
            assert time.monotonic() < deadline, now
            time.sleep(0.5)
        assert now["metrics"]["ftrl"]["examples"] >= learned + 1000

        res = aimass("models", "show", "--tenant", "sec", "--json", env=env)
        shown = orjson.loads(res.stdout)
        assert shown["version"] == 1 and shown["spec"]["serve"] == "ensemble_pair"
        graph = orjson.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{s.serving_port}/tenants/sec/models", timeout=5).read())
        assert graph["version"] == 1 and graph["applied_by"].startswith("cli:")

        bad = tmp_path / "bad.yaml"
        bad.write_text("members: {lr: {kind: ftrl, params: {alfa: 1}}}")
        res = aimass("models", "apply", str(bad), "--tenant", "sec", env=env)
        assert res.returncode == 2 and "members.lr.params.alfa" in res.stderr
        assert served(s, "sec")["outputs"] == ["ftrl", "ad", "ensemble_pair"]  # unchanged
        assert worker.proc.poll() is None and replica.proc.poll() is None
        assert "rebuilt to its model graph" in worker.log.read_text()
        if not s.embedded:  # (Tansu lists no group members)
            view = orjson.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{s.serving_port}/cluster", timeout=15).read())
            assert len(view["members"]) == 1 and view["replica"]["versions"]["sec"]
            sec = next(t for t in view["tenants"] if t["tenant"] == "sec")
            assert sec["trainer"] == view["members"][0]["client"] and sec["version"] >= 1
        # the audit trail reaches ClickHouse through the worker
        deadline = time.monotonic() + 60
        while worker.counter("aimass_events_consumed_total", topic="audit") < 1:
            assert time.monotonic() < deadline, "the audit event was not consumed"
            time.sleep(0.5)
    finally:
        replica.stop()
        worker.stop()
    ch = connect(s.clickhouse_dsn)
    try:
        rows = ch.query("SELECT actor, action, tenant, detail FROM audit")
    finally:
        ch.close()
    assert len(rows) == 1 and rows[0][1:3] == ("spec.applied", "sec")
    assert rows[0][0].startswith("cli:") and orjson.loads(rows[0][3])["version"] == 1
