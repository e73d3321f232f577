"""Per-tenant quotas: a call over its tenant's quota is 429 with Retry-After, counted, and
takes nothing; other tenants are untouched; a bad tenants file is refused naming the path."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.serving.api import create_serving_app
from streams.serving.quotas import Quotas
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import BODY, KEY, ServerThread, call, trained_snapshot

SPEC = {"acme": {"quotas": {"requests_per_s": 5, "examples_per_s": 10}},
        "*": {"quotas": {"requests_per_s": 1000}}}


@pytest.fixture(scope="module")
def server():
    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(), KEY), KEY))
    registry = CollectorRegistry()
    sent: list = []
    app = create_serving_app(store, registry, example_log=sent.extend,
                             quotas=Quotas(SPEC, clock=lambda: 0.0))  # time stands still
    with ServerThread(app) as srv:
        srv.registry, srv.sent = registry, sent
        yield srv


def refused(url: str, body: dict) -> urllib.error.HTTPError:
    req = urllib.request.Request(url, data=orjson.dumps(body),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    return err.value


def test_requests_over_the_quota_are_429_and_counted(server):
    assert [call(server.url("/recommend"), BODY)[0] for _ in range(5)] == [200] * 5
    err = refused(server.url("/recommend"), BODY)
    assert err.code == 429 and err.headers["Retry-After"] == "1"
    assert "acme" in orjson.loads(err.read())["error"]
    predicted = refused(server.url("/predict"), {"tenant": "acme", "features": {"x": "a"}})
    assert predicted.code == 429  # the same requests/s quota
    assert server.registry.get_sample_value(
        "aimass_quota_exceeded_total", {"tenant": "acme", "quota": "requests_per_s"}) == 2
    # another tenant (under the default quota) has its own bucket
    assert call(server.url("/recommend"), {**BODY, "tenant": "other"})[0] == 200


def test_examples_count_against_their_own_quota(server):
    rows = [{"features": {"x": "a"}, "label": 1}] * 8
    status, _ = call(server.url("/examples"), {"tenant": "acme", "examples": rows})
    assert status == 202 and len(server.sent) == 8
    err = refused(server.url("/examples"), {"tenant": "acme", "examples": rows})
    assert err.code == 429 and len(server.sent) == 8  # nothing of the refused call sent
    assert all(k == b"acme" for k, _ in server.sent)  # keyed by tenant: learned in order


@pytest.mark.parametrize("spec, path", [
    ({"acme": {"quotas": {"requests_per_s": 0}}}, "acme.quotas.requests_per_s"),
    ({"acme": {"quotas": {"rps": 5}}}, "acme.quotas.rps"),
    ({"acme": {"quotas": [5]}}, "acme.quotas"),
])
def test_a_bad_tenants_file_names_the_path(spec, path):
    with pytest.raises(ValueError, match=path.replace(".", r"\.")):
        Quotas(spec)


def test_a_tenant_graph_quota_replaces_the_file_one_for_that_tenant_only():
    from streams.serving.quotas import Quotas

    graphs: dict = {}
    q = Quotas({"*": {"quotas": {"requests_per_s": 100, "max_models": 3}}}, replicas=2,
               clock=lambda: 0.0, overrides=lambda: graphs)
    assert q.rate("acme", "requests_per_s") == 50 and not q.named("acme")
    graphs["acme"] = {"requests_per_s": 10.0}
    assert q.rate("acme", "requests_per_s") == 5 and q.named("acme")
    assert q.rate("globex", "requests_per_s") == 50  # the file's, still
    assert q.rate("acme", "examples_per_s") is None and q.limit("acme", "max_models") == 3


def test_the_follower_keeps_each_tenant_graph_quotas():
    from streams.control.distribution import SpecFollower, SpecRecord, seal_record
    from streams.control.specs import parse
    from streams.settings import Settings

    f = SpecFollower(Settings(), KEY)
    spec = parse({"members": {"fm": {"kind": "fm"}}, "quotas": {"requests_per_s": 7}})
    f.take(b"acme", seal_record(KEY, SpecRecord("acme", 1, spec, "t", 0.0)))
    assert f.quotas == {"acme": {"requests_per_s": 7.0}}
    f.take(b"acme", None)  # removed: back to the file's
    assert f.quotas == {} and f.records == {}
    f.take(b"acme", b"garbage")
    assert f.errors == 1 and f.records == {}
