"""Every operation of the replica's OpenAPI description, fuzzed from the description itself
(schemathesis): no request makes it answer 5xx, except the one 5xx it documents (503: the
request's deadline passed before it was scored), and every answer matches its documented
status codes, content type and schema."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streams.serving.api import create_serving_app
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import KEY, ServerThread, trained_snapshot

EXAMPLES = 60  # per operation


@pytest.fixture(scope="module")
def api():
    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(), KEY), KEY))
    app = create_serving_app(store, request_log=lambda k, v: None,
                             example_log=lambda msgs: None)
    with ServerThread(app) as srv:
        yield schemathesis.openapi.from_url(srv.url("/openapi.json"))


def deadline_passed(case, response) -> bool:
    """The documented 503: a /recommend whose deadline had passed when it was scored."""
    body = case.body if isinstance(case.body, dict) else {}
    deadline = body.get("deadline")
    return (response.status_code == 503 and case.path == "/recommend"
            and isinstance(deadline, int | float) and deadline <= time.time()
            and "deadline passed" in response.json().get("error", ""))


def test_every_operation_is_described(api):
    labels = {res.ok().label for res in api.get_all_operations()}
    assert {"POST /recommend", "POST /examples", "POST /predict", "GET /models"} <= labels


def test_no_request_gets_a_5xx_and_every_answer_matches_the_description(api):
    for res in api.get_all_operations():
        op = res.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call()
            assert response.status_code < 500 or deadline_passed(case, response), (
                f"{case.operation.label} answered {response.status_code}: "
                f"{response.text[:300]}")
            case.validate_response(response, checks=[status_code_conformance,
                                                      content_type_conformance,
                                                      response_schema_conformance])

        fuzz()
