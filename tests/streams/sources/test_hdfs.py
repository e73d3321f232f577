"""Files on a real HDFS: a namenode and a datanode (Hadoop 3.4's MiniDFSCluster, from Maven
Central's ``hadoop-client-minicluster``) started by ops/services/hdfs.py, read over WebHDFS
exactly as ``aimass train hdfs://...`` and a train-file task read them."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from ops.bench.common import free_port
from ops.harness import settings_env
from ops.services.hdfs import start_hdfs
from streams.control import jobs
from streams.control.tasks import Task
from streams.settings import Settings
from streams.sources import webhdfs
from streams.sources.files import examples_from_file
from tests.conftest import REPO
from tests.helpers import PHISHING, aimass, captured_sends

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def hdfs():
    server = start_hdfs(free_port(), REPO / ".aimass" / "cache")
    server.put("/data/phishing.csv", PHISHING.read_bytes())
    buf = io.BytesIO()
    pd.DataFrame({"clicked": [1, 0, 1], "city": ["a", "b", None],
                  "w": [2.0, 1.0, 3.0]}).to_parquet(buf)
    server.put("/data/ads 2024/clicks.parquet", buf.getvalue())
    yield server
    server.stop()


def test_a_csv_and_a_parquet_file_on_hdfs_become_the_same_examples_as_local_ones(hdfs):
    with webhdfs.local_file(hdfs.url("/data/phishing.csv")) as path:
        remote = examples_from_file(path, "is_phishing", now=1.0)
    local = examples_from_file(PHISHING, "is_phishing", now=1.0)
    assert [(e.id, e.label, e.features) for e in remote] == \
        [(e.id, e.label, e.features) for e in local]
    with webhdfs.local_file(hdfs.url("/data/ads 2024/clicks.parquet")) as path:
        exs = examples_from_file(path, "clicked", weight_column="w")
    assert [(e.label, e.weight, e.features) for e in exs] == [
        (1, 1.0, {"city": "a"}), (0, 0.5, {"city": "b"}), (1, 1.5, {})]


def test_a_missing_file_is_named_with_the_namenodes_answer(hdfs):
    with pytest.raises(ValueError, match="HDFS answered 404"):
        webhdfs.fetch(hdfs.url("/data/none.csv"))


def test_a_task_learns_a_file_on_hdfs(hdfs, monkeypatch):
    sent = captured_sends(monkeypatch)
    task = Task("h1", "train-file", "acme", {"path": hdfs.url("/data/phishing.csv"),
                                             "label": "is_phishing"})
    assert jobs.train_file(Settings(), task, 0, lambda d, t: None) == 1250
    assert sum(e.label for e in sent) == int(pd.read_csv(PHISHING)["is_phishing"].sum())


def test_aimass_train_sends_a_file_on_hdfs(hdfs, fresh):
    res = aimass("train", hdfs.url("/data/phishing.csv"), "--label", "is_phishing",
                 "--tenant", "sec", env=settings_env(fresh))
    assert res.returncode == 0, res.stderr
    assert "sent 1250 training examples from phishing.csv" in res.stdout
    res = aimass("train", hdfs.url("/data/none.csv"), "--label", "y", env=settings_env(fresh))
    assert res.returncode == 2 and "HDFS answered 404" in res.stderr
