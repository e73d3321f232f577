"""The `aimass` command as a user runs it."""

from __future__ import annotations

import os

import orjson
import pytest

from ops.harness import settings_env
from tests.helpers import PHISHING, aimass


def test_topics_json_for_scripts():
    res = aimass("topics", "--json")
    assert res.returncode == 0, res.stderr
    cat = orjson.loads(res.stdout)
    assert {t["name"] for t in cat} >= {"aimass.ad-requests", "aimass.model-updates"}
    mu = next(t for t in cat if t["role"] == "model-updates")
    assert mu["configs"]["cleanup.policy"] == "compact" and mu["partitions"] == 1


def test_train_refuses_a_bad_file_clearly(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("y,x\n1,a\nperhaps,b\n")
    res = aimass("train", str(bad), "--label", "y")
    assert res.returncode == 2 and "row 2" in res.stderr and "nothing was sent" in res.stderr
    res = aimass("train", str(tmp_path / "missing.csv"), "--label", "y")
    assert res.returncode == 2 and "no such file" in res.stderr
    weighed = tmp_path / "weighed.csv"
    weighed.write_text("y,w,x\n1,2,a\n0,-1,b\n")
    res = aimass("train", str(weighed), "--label", "y", "--weight-column", "w")
    assert res.returncode == 2 and "row 2: -1" in res.stderr and "weight" in res.stderr


@pytest.mark.services
def test_train_sends_the_phishing_file(fresh, tmp_path):
    from streams.contracts.topics import topic_names
    from tests.helpers import consume_all

    res = aimass("train", str(PHISHING), "--label", "is_phishing", "--tenant", "sec",
                 env=settings_env(fresh))
    assert res.returncode == 0, res.stderr
    assert "sent 1250 training examples" in res.stdout
    msgs = consume_all(fresh, topic_names(fresh)["training"], 1250, "train-check")
    assert len(msgs) == 1250
    assert all(orjson.loads(m.value())["tenant"] == "sec" for m in msgs)
    # one partition, in the file's row order: learned in that order
    assert len({m.partition() for m in msgs}) == 1
    assert [int(orjson.loads(m.value())["id"].rsplit("-", 1)[1]) for m in msgs] == \
        list(range(1250))
    weighed = tmp_path / "weighed.csv"
    weighed.write_text("y,w,x\n1,3,a\n0,1,b\n")
    res = aimass("train", str(weighed), "--label", "y", "--weight-column", "w", "--tenant", "sec",
                 env=settings_env(fresh))
    assert res.returncode == 0, res.stderr
    msgs = consume_all(fresh, topic_names(fresh)["training"], 1252, "train-check-2")
    assert [orjson.loads(m.value())["weight"] for m in msgs[-2:]] == [1.5, 0.5]


def test_up_reports_a_taken_port(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {**os.environ, "AIMASS_DATA_DIR": str(tmp_path), "AIMASS_KAFKA_BOOTSTRAP":
               f"127.0.0.1:{port}"}
        res = aimass("up", "--embedded", "--no-prometheus", env=env)
    assert res.returncode == 2
    assert f"port {port}" in res.stderr and "AIMASS_KAFKA_BOOTSTRAP" in res.stderr
