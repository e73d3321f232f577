"""The recommendation API in-process: ranking, versions, fallback, 4xx naming the field, the
OpenAPI description, and a fuzz test: no body makes it answer 5xx."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.events import AdRequest, Recommendation, decode
from streams.serving.api import create_serving_app
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import BODY, KEY, ServerThread, call, trained_snapshot, wait_until


@pytest.fixture(scope="module")
def server():
    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(), KEY), KEY))
    logged, answers = [], []
    app = create_serving_app(store, request_log=lambda k, v: logged.append((k, v)),
                             answer_log=lambda k, v: answers.append((k, v)),
                             example_log=lambda msgs: None)
    with ServerThread(app) as srv:
        srv.logged, srv.answers = logged, answers
        yield srv


def test_recommend_ranks_every_candidate(server):
    status, r = call(server.url("/recommend"), {**BODY, "request_id": "req-1"})
    assert status == 200 and r["request_id"] == "req-1" and not r["fallback"]
    assert r["model"] == "ensemble_stacking" and r["model_version"] == "acme:v3"
    scores = [c["score"] for c in r["ranked"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 100
    assert {c["ad_id"] for c in r["ranked"]} == {str(i) for i in range(100)}
    # logged for the join just after the answer went out (the loop's next turn)
    logged = wait_until(lambda: [decode(AdRequest, v) for k, v in server.logged
                                 if k == b"req-1"], 5, "the request logged", every=0.01)
    assert len(logged) == 1 and logged[0].id == "req-1" and logged[0].event_time > 0
    assert len(logged[0].candidates) == 100 and logged[0].user == BODY["user"]


def test_the_recommendations_topic_carries_the_answer_as_given(server):
    """The answer log's record is the worker's record format: the answer, with the time it
    was made and who made it."""
    status, r = call(server.url("/recommend"), {**BODY, "request_id": "req-a"})
    [(key, value)] = wait_until(lambda: [a for a in server.answers if a[0] == b"req-a"], 5,
                                "the answer logged", every=0.01)
    rec = decode(Recommendation, value)
    assert status == 200 and rec.served_by == "replica" and time.time() - rec.event_time < 60
    assert rec.body() == r and set(json.loads(value)) == set(asdict(rec))


def test_a_member_can_be_asked_for(server):
    status, r = call(server.url("/recommend"), {**BODY, "model": "fm"})
    assert status == 200 and r["model"] == "fm"
    assert call(server.url("/recommend"), {**BODY, "model": "nope"})[0] == 404


def test_no_model_yet_is_a_flagged_fallback(server):
    status, r = call(server.url("/recommend"), {**BODY, "tenant": "newcomer"})
    assert status == 200 and r["fallback"] and r["model_version"] == "newcomer:none"
    assert [c["ad_id"] for c in r["ranked"]][:3] == ["0", "1", "2"]


@pytest.mark.parametrize("body,field", [
    ({**BODY, "tenant": None}, "tenant"),
    ({**BODY, "candidates": []}, "candidates"),
    ({**BODY, "candidates": [{"features": {}}]}, "candidates[0].ad_id"),
    ({**BODY, "user": {"x": {"deep": 1}}}, "user.x"),
    ({**BODY, "model": 5}, "model"),
    ([1, 2], "body"),
])
def test_bad_bodies_get_400_naming_the_field(server, body, field):
    status, r = call(server.url("/recommend"), body)
    assert status == 400 and r["field"] == field and r["error"]


def test_predict_models_health(server):
    status, r = call(server.url("/predict"), {"tenant": "acme", "features": {"u_gender": "F"}})
    assert status == 200 and 0 <= r["p"] <= 1 and r["model_version"] == "acme:v3"
    assert call(server.url("/predict"), {"tenant": "zzz", "features": {}})[0] == 404
    assert call(server.url("/predict"), {"tenant": "acme"})[1]["field"] == "features"
    status, m = call(server.url("/models"))
    assert status == 200 and m["tenants"]["acme"]["version"] == "acme:v3"
    assert "ensemble_stacking" in m["tenants"]["acme"]["outputs"]
    assert call(server.url("/healthz"))[0] == 200 and call(server.url("/readyz"))[0] == 200
    for i in range(3):  # unknown paths: 404, and one metric label for all of them
        assert call(server.url(f"/nope-{i}"))[0] == 404
    _, metrics = call_text(server.url("/metrics"))
    assert 'endpoint="unknown"' in metrics and "/nope-" not in metrics


def test_openapi_is_served_and_valid(server):
    from openapi_spec_validator import validate

    status, doc = call(server.url("/openapi.json"))
    assert status == 200
    validate(doc)
    assert {"/recommend", "/predict", "/models", "/healthz", "/readyz"} <= set(doc["paths"])
    # an open replica (no keys file) declares no security and no 401/403 answers
    assert all("security" not in op and "401" not in op["responses"]
               for ops in doc["paths"].values() for op in ops.values())
    assert "requestBody" in doc["paths"]["/noop"]["post"]  # it refuses an empty body
    # only the routes this replica serves, and the limits its validation applies
    assert not {"/tasks", "/cluster", "/tenants/{tenant}/models"} & set(doc["paths"])
    import time

    body = doc["paths"]["/examples"]["post"]["requestBody"]["content"]["application/json"]
    example = body["schema"]["properties"]["examples"]["items"]["properties"]
    assert abs(example["event_time"]["maximum"] - (time.time() + 300)) < 60
    values = example["features"]["additionalProperties"]["anyOf"]
    numbers = [v for v in values if v["type"] in ("number", "integer")]
    assert [(v["type"], v["minimum"], v["maximum"]) for v in numbers] == [("number", -1e15, 1e15)]


def test_a_wrong_method_is_a_405_that_says_which_ones_the_path_takes(server):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(server.url("/recommend"), method="GET")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a GET of /recommend was answered")
    except urllib.error.HTTPError as e:
        assert e.code == 405 and "POST" in e.headers["Allow"]


def call_text(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4), max_leaves=12)
near_valid_examples = st.fixed_dictionaries({
    "tenant": st.one_of(st.just("acme"), st.text(max_size=10), json_values),
    "examples": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({
        "features": json_values, "label": json_values}, optional={
            "id": json_values, "event_time": json_values, "tenant": json_values}),
        json_values), max_size=3), json_values)})
near_valid = st.fixed_dictionaries({
    "tenant": st.one_of(st.just("acme"), st.text(max_size=10), st.integers(), st.none()),
    "user": st.one_of(st.dictionaries(st.text(max_size=5), json_values, max_size=3),
                      json_values),
    "candidates": st.one_of(st.lists(st.one_of(
        st.fixed_dictionaries({"ad_id": st.one_of(st.text(max_size=5), st.integers()),
                               "features": json_values}), json_values), max_size=4),
        json_values),
}, optional={"context": json_values, "model": json_values, "request_id": json_values,
             "priority": json_values, "deadline": json_values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(near_valid, near_valid_examples, json_values), endpoint=st.sampled_from(
    ["/recommend", "/predict", "/noop", "/examples"]))
def test_fuzz_never_5xx(server, body, endpoint):
    status, r = call(server.url(endpoint), raw=json.dumps(body).encode())  # big ints too
    assert status < 500, (endpoint, body, r)
    if status >= 400:
        assert r.get("error")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64))
def test_fuzz_raw_bytes_never_5xx(server, raw):
    assert call(server.url("/recommend"), raw=raw)[0] < 500


def test_a_request_past_its_deadline_is_shed_unscored(server):
    """Overload: a request that waited past its deadline is answered 503 with Retry-After
    before any scoring, and counted; one within its deadline is scored."""
    import urllib.error
    import urllib.request

    import orjson
    from prometheus_client.parser import text_string_to_metric_families

    def shed_count() -> float:
        text = urllib.request.urlopen(server.url("/metrics"), timeout=5).read().decode()
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "aimass_recommend_shed_total" and s.labels == {"tenant": "acme"})

    shed = shed_count()
    late = {**BODY, "request_id": "late-1", "deadline": time.time() - 0.01}
    req = urllib.request.Request(server.url("/recommend"), data=orjson.dumps(late),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 503 and err.value.headers["Retry-After"] == "1"
    assert "deadline" in orjson.loads(err.value.read())["error"]
    assert shed_count() == shed + 1
    assert not [k for k, _ in server.logged if k == b"late-1"]  # not logged: not answered
    status, r = call(server.url("/recommend"), {**BODY, "deadline": time.time() + 5})
    assert status == 200 and r["ranked"]
