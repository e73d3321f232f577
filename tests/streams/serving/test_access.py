"""Roles and tenants on the serving API: a key sees only its tenants and does only what its
role allows; no key, an unknown key, a wrong role or tenant get 401/403 with a message; open
endpoints stay open; labelled examples handed over by a trainer reach the training log."""

from __future__ import annotations

import os

import orjson
import pytest

from streams.contracts.events import TrainingExample, decode
from streams.serving.access import AccessControl, add_key
from streams.serving.api import create_serving_app
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import BODY, KEY, ServerThread, aimass, trained_snapshot


def call(url, body=None, key=None):
    import urllib.error
    import urllib.request

    data = None if body is None else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, headers=headers,
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, orjson.loads(raw) if raw.startswith(b"{") else raw
    except urllib.error.HTTPError as e:
        return e.code, orjson.loads(e.read())


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys = {
        "scorer": add_key(path, "ads-acme", "scorer", ["acme"]),
        "other": add_key(path, "ads-globex", "scorer", ["globex"]),
        "viewer": add_key(path, "dash", "viewer", ["acme"]),
        "trainer": add_key(path, "labeller", "trainer", ["acme"]),
        "admin": add_key(path, "ops", "admin", ["*"]),
    }
    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(tenant="acme"), KEY), KEY))
    store.swap(load_snapshot(snapshot_of(trained_snapshot(tenant="globex"), KEY), KEY))
    examples = []
    app = create_serving_app(store, access=AccessControl.from_file(path),
                             example_log=examples.extend)
    with ServerThread(app) as srv:
        srv.keys, srv.examples, srv.path = keys, examples, path
        yield srv


def test_keys_file_holds_digests_only(secured):
    text = secured.path.read_text()
    assert all(k not in text for k in secured.keys.values())
    assert oct(secured.path.stat().st_mode & 0o777) == "0o600"


def test_no_key_or_unknown_key_is_401(secured):
    assert call(secured.url("/recommend"), BODY)[0] == 401
    status, r = call(secured.url("/recommend"), BODY, key="not-a-key")
    assert status == 401 and "unknown" in r["error"]


def test_a_scorer_scores_its_tenant_only(secured):
    assert call(secured.url("/recommend"), BODY, secured.keys["scorer"])[0] == 200
    status, r = call(secured.url("/recommend"), BODY, secured.keys["other"])
    assert status == 403 and "acme" in r["error"]
    assert call(secured.url("/recommend"), {**BODY, "tenant": "globex"},
                secured.keys["other"])[0] == 200
    assert call(secured.url("/predict"), {"tenant": "globex", "features": {}},
                secured.keys["scorer"])[0] == 403


def test_a_viewer_sees_its_tenants_models_and_scores_nothing(secured):
    status, m = call(secured.url("/models"), key=secured.keys["viewer"])
    assert status == 200 and set(m["tenants"]) == {"acme"}
    status, r = call(secured.url("/recommend"), BODY, secured.keys["viewer"])
    assert status == 403 and "viewer" in r["error"]
    status, m = call(secured.url("/models"), key=secured.keys["admin"])
    assert set(m["tenants"]) == {"acme", "globex"}


def test_a_trainer_hands_over_labelled_examples(secured):
    body = {"tenant": "acme", "examples": [
        {"id": "ex-1", "features": {"u_gender": "F"}, "label": 1},
        {"features": {"u_gender": "M", "a_genre": "Drama"}, "label": 0}]}
    assert call(secured.url("/examples"), body, secured.keys["scorer"])[0] == 403
    status, r = call(secured.url("/examples"), body, secured.keys["trainer"])
    assert status == 202 and r["accepted"] == 2 and r["ids"][0] == "ex-1"
    sent = [decode(TrainingExample, v) for _, v in secured.examples[-2:]]
    assert [e.tenant for e in sent] == ["acme", "acme"] and [e.label for e in sent] == [1, 0]
    assert sent[0].source == "api"


def test_one_bad_example_refuses_the_call_naming_it(secured):
    before = len(secured.examples)
    body = {"tenant": "acme", "examples": [{"features": {}, "label": 1},
                                           {"features": {}, "label": 7}]}
    status, r = call(secured.url("/examples"), body, secured.keys["admin"])
    assert status == 400 and r["field"] == "examples[1].label"
    assert len(secured.examples) == before
    # a key cannot hand examples over to another tenant by naming it in a row
    body = {"tenant": "acme", "examples": [{"features": {}, "label": 1, "tenant": "globex"}]}
    status, r = call(secured.url("/examples"), body, secured.keys["trainer"])
    assert status == 202
    assert decode(TrainingExample, secured.examples[-1][1]).tenant == "acme"


def test_open_endpoints_need_no_key(secured):
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert call(secured.url(path))[0] == 200, path
    status, doc = call(secured.url("/openapi.json"))
    assert "401" in doc["paths"]["/recommend"]["post"]["responses"]
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"


def test_keys_command(tmp_path):
    env = {**os.environ, "AIMASS_API_KEYS": str(tmp_path / "keys.json")}
    res = aimass("keys", "add", "ads", "--role", "scorer", "--tenant", "acme", env=env)
    assert res.returncode == 0, res.stderr
    key = res.stdout.strip().splitlines()[-1]
    assert AccessControl.from_file(tmp_path / "keys.json").authenticate(f"Bearer {key}").name \
        == "ads"
    res = aimass("keys", "list", env=env)
    assert "ads" in res.stdout and "scorer" in res.stdout and key not in res.stdout
    res = aimass("keys", "add", "x", "--role", "root", "--tenant", "acme", env=env)
    assert res.returncode == 2 and "role must be one of" in res.stderr


def test_a_missing_or_bad_keys_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such API keys file"):
        AccessControl.from_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not an aimass API keys file"):
        AccessControl.from_file(tmp_path / "bad.json")


def test_metrics_and_readyz_name_no_tenant_without_a_key(secured):
    assert call(secured.url("/metrics"))[0] == 401
    status, text = call(secured.url("/metrics"), key=secured.keys["viewer"])  # the scrape key
    assert status == 200 and b"aimass_http_requests_total" in text
    status, ready = call(secured.url("/readyz"))
    assert status == 200 and ready == {"ready": True}


def test_the_key_is_checked_before_the_body(secured):
    """Another tenant's body that is also malformed: the caller learns 403, not the field."""
    bad = {**BODY, "candidates": [{"ad_id": 5.5}]}
    status, r = call(secured.url("/recommend"), bad, secured.keys["other"])
    assert status == 403 and "field" not in r


def test_made_up_tenants_cost_no_series(secured):
    key = secured.keys["admin"]
    for i in range(50):
        assert call(secured.url("/recommend"), {**BODY, "tenant": f"made-up-{i}"}, key)[0] == 200
    _, text = call(secured.url("/metrics"), key=key)
    assert b"made-up" not in text and b'tenant="unknown"' in text


def test_a_slow_body_is_timed_out_and_an_aborted_one_counted(secured, monkeypatch):
    import socket
    import time

    from streams.serving import http

    monkeypatch.setattr(http, "BODY_TIMEOUT", 0.5)
    body = orjson.dumps(BODY)
    head = (f"POST /recommend HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{secured.keys['admin']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", secured.port)) as s:  # too slow
        s.sendall(head + body[:10])
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 408")
    with socket.create_connection(("127.0.0.1", secured.port)) as s:  # gone midway
        s.sendall(head + body[:10])
    time.sleep(0.3)
    _, text = call(secured.url("/metrics"), key=secured.keys["admin"])
    assert b'aimass_http_aborted_total{endpoint="/recommend"} 1.0' in text


def test_a_score_that_is_not_finite_is_a_400_naming_the_field():
    import numpy as np

    from streams.contracts.events import InvalidEvent
    from streams.serving.api import _finite

    with pytest.raises(InvalidEvent) as err:
        _finite(np.array([0.2, np.nan]), "candidates[{}].features")
    assert err.value.field == "candidates[1].features"


def test_a_revoked_key_is_gone_from_the_file(tmp_path):
    from streams.serving.access import list_keys, revoke_key

    path = tmp_path / "keys.json"
    key = add_key(path, "old", "scorer", ["acme"])
    add_key(path, "new", "viewer", ["*"])
    assert revoke_key(path, "old") == {"name": "old", "role": "scorer", "tenants": ["acme"]}
    assert [k["name"] for k in list_keys(path)] == ["new"]
    from streams.serving.access import AccessDenied

    with pytest.raises(AccessDenied):
        AccessControl.from_file(path).authenticate(f"Bearer {key}")
    with pytest.raises(ValueError, match="no key named 'old'"):
        revoke_key(path, "old")
