"""``/tenants/{tenant}/models``: viewers see their tenants' graphs, admins apply and remove
them; a bad spec is a 400 naming the path in it; what is applied is published one version up
and then shown."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from streams.control.distribution import SpecRecord
from streams.control.specs import default_spec
from streams.serving.access import AccessControl, add_key
from streams.serving.api import create_serving_app
from streams.serving.graphs import Graphs
from streams.serving.openapi import spec as openapi
from streams.serving.snapshots import ModelStore
from tests.helpers import ServerThread

GRAPH = {"members": {"lr": {"kind": "ftrl", "params": {"alpha": 0.1}}, "fm": {"kind": "fm"}},
         "ensembles": {"pair": {"kind": "average", "over": ["lr", "fm"]}},
         "serve": "ensemble_pair"}

pytestmark = pytest.mark.control


def call(url, method="GET", body=None, key=None):
    data = None if body is None else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, orjson.loads(e.read())


@pytest.fixture()
def api(tmp_path):
    path = tmp_path / "keys.json"
    keys = {"viewer": add_key(path, "dash", "viewer", ["acme"]),
            "trainer": add_key(path, "labeller", "trainer", ["acme"]),
            "admin": add_key(path, "ops", "admin", ["*"])}
    records: dict = {}
    published: list = []

    def publish(tenant, spec, version, actor):  # the topic, read back by the follower
        published.append((tenant, version, actor))
        if spec is None:
            records.pop(tenant, None)
        else:
            records[tenant] = SpecRecord(tenant, version, spec, actor, 1.0)

    audit: list = []
    graphs = Graphs(lambda: records, default_spec(["ftrl"], ["average"]), publish, audit.append,
                    max_models=lambda tenant: 2 if tenant == "small" else None)
    app = create_serving_app(ModelStore(), access=AccessControl.from_file(path), graphs=graphs)
    with ServerThread(app) as srv:
        srv.keys, srv.published, srv.audit = keys, published, audit
        yield srv


def test_a_viewer_sees_the_default_graph_of_its_tenant_only(api):
    status, body = call(api.url("/tenants/acme/models"), key=api.keys["viewer"])
    assert status == 200 and body["default"] is True and body["version"] == 0
    assert list(body["spec"]["members"]) == ["ftrl"]
    assert call(api.url("/tenants/globex/models"), key=api.keys["viewer"])[0] == 403
    assert call(api.url("/tenants/acme/models"))[0] == 401


def test_only_an_admin_applies_a_graph(api):
    for who in ("viewer", "trainer"):
        status, body = call(api.url("/tenants/acme/models"), "PUT", GRAPH, api.keys[who])
        assert status == 403 and "may not specs" in body["error"]
    assert api.published == []


def test_an_admin_applies_then_removes_a_graph(api):
    url, admin = api.url("/tenants/acme/models"), api.keys["admin"]
    assert call(url, "PUT", GRAPH, admin) == (200, {"tenant": "acme", "version": 1,
                                                    "default": False, "applied_by": "api:ops"})
    assert call(url, "PUT", GRAPH, admin)[1]["version"] == 2
    status, shown = call(url, key=api.keys["viewer"])
    assert status == 200 and shown["version"] == 2 and shown["default"] is False
    assert shown["spec"]["ensembles"]["pair"]["over"] == ["lr", "fm"]
    assert shown["spec"]["serve"] == "ensemble_pair"
    assert call(url, "DELETE", key=admin)[1]["default"] is True
    assert call(url, "DELETE", key=admin)[0] == 404
    assert call(url, key=admin)[1]["default"] is True
    assert [v for _, v, _ in api.published] == [1, 2, 3]
    trail = [(e.actor, e.action, e.tenant, e.detail.get("version"), e.detail["previous"])
             for e in api.audit]
    assert trail == [("api:ops", "spec.applied", "acme", 1, 0),
                     ("api:ops", "spec.applied", "acme", 2, 1),
                     ("api:ops", "spec.removed", "acme", None, 2)]
    assert api.audit[0].detail["spec"]["serve"] == "ensemble_pair"


@pytest.mark.parametrize(("spec", "field"), [
    ({"members": {"fm": {"kind": "xgboost"}}}, "spec.members.fm.kind"),
    ({"members": {"fm": {"kind": "fm", "params": {"lr": -1}}}}, "spec.members.fm.params.lr"),
    ({**GRAPH, "ensembles": {"pair": {"kind": "vote", "over": ["nobody"]}}},
     "spec.ensembles.pair.over[0]"),
    ({"members": {}}, "spec.members"),
    ([1, 2], "body"),
])
def test_a_bad_spec_is_a_400_naming_its_path(api, spec, field):
    status, body = call(api.url("/tenants/acme/models"), "PUT", spec, api.keys["admin"])
    assert status == 400 and body["field"] == field, body
    assert api.published == []


def test_the_openapi_document_describes_the_graph_routes():
    ops = openapi()["paths"]["/tenants/{tenant}/models"]
    assert set(ops) == {"get", "put", "delete"}
    assert all("401" in op["responses"] and op["security"] for op in ops.values())


def test_a_tenant_that_is_not_a_tenant_name_is_a_400(api):
    status, body = call(api.url("/tenants/a%20b/models"), key=api.keys["admin"])
    assert status == 400 and body["field"] == "tenant"


def test_a_graph_over_the_tenant_max_models_quota_is_a_400(api):
    three = {"members": {"a": {"kind": "ftrl"}, "b": {"kind": "fm"}, "c": {"kind": "forest"}}}
    status, body = call(api.url("/tenants/small/models"), "PUT", three, api.keys["admin"])
    assert status == 400 and body["field"] == "spec.members" and "max_models" in body["error"]
    assert call(api.url("/tenants/acme/models"), "PUT", three, api.keys["admin"])[0] == 200
