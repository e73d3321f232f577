"""Overload: a replica that runs behind, or holds its most calls at once, answers new calls 503
with ``Retry-After`` before reading their bodies, counts them, and answers probes and scrapes
all the same; once it has room again it answers as before. Nothing is queued without bound."""

from __future__ import annotations

import socket
import time
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.serving.api import create_serving_app
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import BODY, KEY, ServerThread, call, wait_until


def busy_count(server, endpoint: str) -> float:
    text = urllib.request.urlopen(server.url("/metrics"), timeout=5).read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "aimass_http_busy_total" and s.labels == {"endpoint": endpoint})


@pytest.fixture(scope="module")
def store():
    from tests.helpers import trained_snapshot

    s = ModelStore()
    s.swap(load_snapshot(snapshot_of(trained_snapshot(), KEY), KEY))
    return s


def test_a_replica_running_behind_sheds_calls_but_answers_probes(store):
    behind = [0.0]
    app = create_serving_app(store, lag=lambda: behind[0], max_lag=0.25)
    with ServerThread(app) as srv:
        assert call(srv.url("/recommend"), BODY)[0] == 200
        behind[0] = 0.4
        before = busy_count(srv, "/recommend")
        req = urllib.request.Request(srv.url("/recommend"), data=orjson.dumps(BODY))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 503 and err.value.headers["Retry-After"] == "1"
        assert "0.400 s late" in orjson.loads(err.value.read())["error"]
        assert busy_count(srv, "/recommend") == before + 1
        assert call(srv.url("/noop"), {})[0] == 503
        assert call(srv.url("/predict"), {"tenant": "acme", "features": {}})[0] == 503
        # probes and scrapes are answered however late: an orchestrator must see it alive
        for path in ("/healthz", "/readyz", "/metrics"):
            with urllib.request.urlopen(srv.url(path), timeout=5) as r:
                assert r.status == 200
        behind[0] = 0.1  # caught up
        status, r = call(srv.url("/recommend"), BODY)
        assert status == 200 and len(r["ranked"]) == 100


def _held_call(port: int, body: bytes) -> socket.socket:
    """A /noop call whose headers are sent and whose body is held back but for one byte: the
    replica has taken it and waits for the rest."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /noop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body[:1])
    return s


def test_calls_held_at_once_are_bounded_per_endpoint_and_the_rest_shed(store):
    app = create_serving_app(store, lag=lambda: 0.0, max_in_flight=3)
    body = orjson.dumps({"x": 1})
    with ServerThread(app) as srv:
        held = [_held_call(srv.port, body) for _ in range(3)]
        time.sleep(0.2)  # the replica has taken all three
        status, r = call(srv.url("/noop"), {"x": 1})
        assert status == 503 and "3 /noop calls in flight (at most 3)" in r["error"]
        assert wait_until(lambda: busy_count(srv, "/noop") >= 1, 5, "the 503 counted")
        status, r = call(srv.url("/recommend"), BODY)  # another endpoint's calls: answered
        assert status == 200 and len(r["ranked"]) == 100
        for s in held:  # their bodies come: each is answered, none was lost
            s.sendall(body[1:])
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            s.close()
        status, r = call(srv.url("/noop"), {"x": 1})
        assert status == 200


def test_the_description_says_any_call_but_probes_may_be_shed(store):
    with ServerThread(create_serving_app(store)) as srv:
        doc = call(srv.url("/openapi.json"))[1]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            shed = "503" in op["responses"] and "overloaded" in \
                op["responses"]["503"]["description"].lower()
            assert shed == (path not in ("/healthz", "/readyz", "/metrics")), (method, path)


def test_a_request_whose_deadline_would_pass_before_its_answer_is_shed(store):
    from streams.serving.api import EXPECTED_CAP, SERVING

    app = create_serving_app(store, lag=lambda: 0.0)
    serving = app[SERVING]
    with ServerThread(app) as srv:
        for _ in range(5):
            assert call(srv.url("/recommend"), BODY)[0] == 200
        assert 0 < serving.expected <= EXPECTED_CAP  # learned from the answers it gave
        serving.expected = 0.05  # as a replica that answers in 50 ms now
        status, r = call(srv.url("/recommend"), {**BODY, "deadline": time.time() + 0.02})
        assert status == 503 and "deadline passed, or would" in r["error"]
        assert "50.0 ms" in r["error"]
        status, r = call(srv.url("/recommend"), {**BODY, "deadline": time.time() + 2})
        assert status == 200 and len(r["ranked"]) == 100
