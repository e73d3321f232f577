"""``GET /cluster``: the cluster view for viewers, each seeing its own tenants only; gathered
at most once every two seconds; a broker that cannot be read is a 503."""

from __future__ import annotations

import pytest

from streams.serving.access import AccessControl, add_key
from streams.serving.api import create_serving_app
from streams.serving.cluster import ClusterView
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import KEY, ServerThread, trained_snapshot
from tests.streams.serving.test_graphs import call

VIEW = {"group": "aimass", "state": "STABLE",
        "members": [{"client": "w1", "partitions": ["x.examples[0]"]}],
        "lag": [{"topic": "x.examples", "partition": 0, "lag": 3}],
        "workers": [{"url": "http://w1", "answering": True}],
        "tenants": [{"tenant": "acme", "trainer": "w1"}, {"tenant": "globex", "trainer": "w1"}]}

pytestmark = pytest.mark.control


@pytest.fixture()
def api(tmp_path):
    path = tmp_path / "keys.json"
    keys = {"viewer": add_key(path, "dash", "viewer", ["acme"]),
            "ops": add_key(path, "ops", "viewer", ["*"])}
    store = ModelStore()
    for tenant in ("acme", "globex"):
        store.swap(load_snapshot(snapshot_of(trained_snapshot(tenant=tenant), KEY), KEY))
    state = {"calls": 0, "fail": False}

    def gather():
        state["calls"] += 1
        if state["fail"]:
            raise RuntimeError("KafkaError: broker transport failure")
        return VIEW

    from streams.control.tasks import Task

    tasks = [Task("t1", "export", "acme", {}, state="running"),
             Task("t2", "export", "globex", {}), Task("t3", "export", "acme", {}, state="done")]
    app = create_serving_app(store, access=AccessControl.from_file(path),
                             cluster=ClusterView(gather, store, "replica-1", lambda: tasks))
    with ServerThread(app) as srv:
        srv.keys, srv.state = keys, state
        yield srv


def test_a_viewer_sees_the_cluster_with_its_tenants_only(api):
    status, view = call(api.url("/cluster"), key=api.keys["viewer"])
    assert status == 200 and view["members"] == VIEW["members"] and view["lag"] == VIEW["lag"]
    assert [t["tenant"] for t in view["tenants"]] == ["acme"]
    assert list(view["replica"]["versions"]) == ["acme"]
    assert [t["id"] for t in view["tasks"]] == ["t1"]  # its tenant's, queued or running
    status, view = call(api.url("/cluster"), key=api.keys["ops"])
    assert [t["tenant"] for t in view["tenants"]] == ["acme", "globex"]
    assert api.state["calls"] == 1  # the second call within 2 s shared the first's view
    assert call(api.url("/cluster"))[0] == 401


def test_a_broker_that_cannot_be_read_is_a_503(api):
    api.state["fail"] = True
    status, body = call(api.url("/cluster"), key=api.keys["ops"])
    assert status == 503 and "broker transport failure" in body["error"]
