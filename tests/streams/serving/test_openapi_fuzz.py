"""Every operation of the replica's OpenAPI description, fuzzed from the description itself
(schemathesis, every check it has: ``--checks all``), with the API open and with API keys:
no request makes it answer 5xx, except the one 5xx it documents (503: the request's deadline
passed before it was scored), every answer matches its documented status codes, headers,
content type and schema, what the schema allows is accepted and what it refuses is refused,
and with keys a call without one is refused."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from streams.serving.access import AccessControl, add_key
from streams.serving.api import EXPECTED_CAP, create_serving_app
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import KEY, ServerThread, trained_snapshot

EXAMPLES = 60  # per operation


@pytest.fixture(scope="module", params=["open", "keys"])
def api(request, tmp_path_factory):
    """(the served description, the headers every call carries): the API open, or with an
    API keys file and an admin's key."""
    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(), KEY), KEY))
    access, headers = None, {}
    if request.param == "keys":
        path = tmp_path_factory.mktemp("keys") / "keys.json"
        headers = {"X-API-Key": add_key(path, "ops", "admin", ["*"])}
        access = AccessControl.from_file(path)
    app = create_serving_app(store, request_log=lambda k, v: None,
                             example_log=lambda msgs: None, access=access)
    with ServerThread(app) as srv:
        yield schemathesis.openapi.from_url(srv.url("/openapi.json"), headers=headers), headers


def deadline_passed(case, response) -> bool:
    """The documented 503: a /recommend whose deadline had passed, or would have before it
    was answered (the replica's estimate of that, at most EXPECTED_CAP), when it was scored."""
    body = case.body if isinstance(case.body, dict) else {}
    deadline = body.get("deadline")
    return (response.status_code == 503 and case.path == "/recommend"
            and isinstance(deadline, int | float) and deadline <= time.time() + EXPECTED_CAP
            and "deadline passed" in response.json().get("error", ""))


def test_every_operation_is_described(api):
    schema, _ = api
    labels = {res.ok().label for res in schema.get_all_operations()}
    assert {"POST /recommend", "POST /examples", "POST /predict", "GET /models"} <= labels


def test_no_request_gets_a_5xx_and_every_answer_matches_the_description(api):
    schema, headers = api
    for res in schema.get_all_operations():
        op = res.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(headers=headers or None)
            assert response.status_code < 500 or deadline_passed(case, response), (
                f"{case.operation.label} answered {response.status_code}: "
                f"{response.text[:300]}")
            # every check; the documented 503 is checked against its description like the rest
            skip = [not_a_server_error] if deadline_passed(case, response) else None
            case.validate_response(response, headers=headers or None, excluded_checks=skip)

        fuzz()
