"""`aimass train --wait --json` and `aimass status`, against a running worker: the figures of
every model once each row is learned; the worker group, its partitions and lag, the trainer of
each tenant, the replicas."""

from __future__ import annotations

import orjson
import pytest

from ops.harness import WorkerProcess, settings_env
from streams.cli.status import render
from tests.conftest import free_port
from tests.helpers import PHISHING, aimass, wait_until


@pytest.mark.services
def test_status_shows_the_group_lag_and_each_tenants_trainer(fresh, tmp_path):
    if fresh.embedded:
        pytest.skip("Tansu's DescribeGroups answers no members: the view needs Kafka's")
    w = WorkerProcess(fresh, tmp_path / "worker.log")
    env = settings_env(fresh)
    try:
        w.wait_ready()
        out = tmp_path / "phishing.json"
        res = aimass("train", str(PHISHING), "--label", "is_phishing", "--tenant", "sec",
                     "--test-share", "0.2", "--wait", "--json", str(out), "--plot",
                     str(tmp_path / "phishing.png"), env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "ensemble_stacking" in res.stdout  # the table, once every row was learned
        doc = orjson.loads(out.read_bytes())
        assert doc["tenant"] == "sec" and doc["rows_sent"] == 1250
        models = {m["name"]: m for m in doc["models"]}
        assert {"ftrl", "forest", "ensemble_stacking"} <= set(models)
        stacking = models["ensemble_stacking"]
        assert stacking["examples"] + stacking["holdout_examples"] + \
            stacking["test_examples"] == 1250
        assert 200 < stacking["test_examples"] < 300 and stacking["test_auc"] > 0.85
        assert doc["examples_learned"] == stacking["examples"]
        assert 0 < stacking["logloss"] < 0.5 and 0.85 < stacking["auc"] <= 1  # it learned
        curve = stacking["curve"]  # its loss along the stream, to the last example learned
        assert len(curve) >= 10 and curve[-1][0] == stacking["examples"]
        assert [n for n, _ in curve] == sorted(n for n, _ in curve)
        assert sum(v for _, v in curve[-5:]) < sum(v for _, v in curve[:5])  # it improved
        png = (tmp_path / "phishing.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000  # lines, not an empty frame
        nobody = f"http://127.0.0.1:{free_port()}"

        def settled():
            res = aimass("status", "--json", "--worker", f"http://127.0.0.1:{fresh.web_port}",
                         "--replica", nobody, env=env)
            assert res.returncode == 0, res.stderr
            view = orjson.loads(res.stdout)
            lag = {(r["topic"].rsplit(".", 1)[-1], r["partition"]): r["lag"]
                   for r in view["lag"]}
            done = all(v == 0 for (role, _), v in lag.items() if role in ("training",
                                                                            "examples"))
            return done and view

        view = wait_until(settled, 60, "the training and examples topics read to their end")
    finally:
        w.stop()
    assert view["group"] == fresh.app_id and len(view["members"]) == 1
    member = view["members"][0]
    roles = [p.split("[")[0].rsplit(".", 1)[-1] for p in member["partitions"]
             if "__assignor" not in p]  # (Faust's own topic)
    assert sum(r in ("ad-requests", "feedback", "training", "examples") for r in roles) == \
        4 * fresh.partitions  # it reads every input partition
    assert roles.count("audit") == 1  # and the audit trail
    assert len(view["lag"]) == 4 * fresh.partitions
    [sec] = view["tenants"]
    assert sec["tenant"] == "sec" and sec["trainer"] == member["client"]
    assert sec["examples"] == 1250 and sec["version"] >= 1
    assert view["replicas"] == [{"url": nobody, "answering": False, "versions": {}}]
    text = render(view)
    assert "sec: " in text and "1,250 examples" in text and "not answering" in text
