"""Hostile but well-formed values are bad input, refused where they enter with the field named;
a row a sink can never take goes to the dead letters with the column while the rest is written;
a failed delivery fails its own call only."""

from __future__ import annotations

import time

import pytest

from streams.contracts import batches
from streams.contracts.events import (
    MAX_CLOCK_SKEW,
    AdRequest,
    Feedback,
    InvalidEvent,
    TrainingExample,
)


def request(**over) -> dict:
    return {"id": "r1", "event_time": 1.7e9, "tenant": "acme", "user": {"age": 30},
            "candidates": [{"ad_id": "a", "features": {"genre": "Drama"}}], **over}


@pytest.mark.parametrize("body, field", [
    (request(event_time=2**32), "event_time"),
    (lambda: request(event_time=time.time() + MAX_CLOCK_SKEW + 60), "event_time"),
    (request(user={"x": 1e308}), "user.x"),
    (request(user={"x": -1e16}), "user.x"),
    (request(user={"x": 10**30}), "user.x"),
    (request(user={"x": "y" * 1_000_000}), "user.x"),
    (request(user={"n" * 200: 1}), "user"),
    (request(candidates=[{"ad_id": "a", "features": {"p": 1e308}}]), "candidates[0].features.p"),
    (request(candidates=[{"ad_id": "a"}, {"ad_id": "b", "features": {"s": "z" * 2000}}]),
     "candidates[1].features.s"),
    (lambda: request(deadline=time.time() + 10 * 86400), "deadline"),
])
def test_hostile_values_are_refused_naming_the_field(body, field):
    if callable(body):  # relative to now when the test runs, not when it was collected
        body = body()
    with pytest.raises(InvalidEvent) as err:
        AdRequest.from_dict(body)
    assert err.value.field == field


def test_values_within_the_limits_pass():
    now = time.time()
    r = AdRequest.from_dict(request(event_time=now + 10, user={"ts_ms": 1.7e12, "id": 2**62},
                                    deadline=now + 3600))
    assert r.user["ts_ms"] == 1.7e12
    TrainingExample.from_dict({"id": "e", "event_time": now, "tenant": "t",
                               "features": {"x": -1e15}, "label": 1})


def test_a_far_future_feedback_is_a_dead_letter_not_a_watermark():
    raws = [batches.Raw(b'{"id": "f", "event_time": 99999999999, "tenant": "t", '
                       b'"request_id": "r", "ad_id": "a", "kind": "click"}', "feedback", 2, 7,
                       b"r", [("trace", b"x1")])]
    good, bad = batches.decode_batch(Feedback, raws, 1.0)
    assert not good and bad[0].field == "event_time"
    assert bad[0].key == "r" and bad[0].headers == [["trace", "x1"]]  # kept
    assert bad[0].kafka_key == b"r" and bad[0].kafka_headers == [("trace", b"x1")]



@pytest.mark.parametrize("w", [-1, 1e9, float("nan"), float("inf"), True, "2"])
def test_an_examples_weight_is_a_bounded_number(w):
    with pytest.raises(InvalidEvent) as err:
        TrainingExample.from_dict({"id": "e", "event_time": 1, "tenant": "t", "features": {},
                                   "label": 1, "weight": w})
    assert err.value.field == "weight"


def test_weights_travel_in_example_batches_and_a_bad_one_is_its_own_dead_letter():
    import orjson

    from streams.contracts.example_batches import decode_examples, encode_examples

    exs = [TrainingExample(f"e{i}", 1.7e9, "t", {"x": i}, i % 2, weight=float(i)) for i in range(3)]
    (_, value), = encode_examples(exs)
    good, bad = decode_examples(value)
    assert [e.weight for e in good] == [0.0, 1.0, 2.0] and bad == []
    plain = encode_examples([TrainingExample("p", 1.7e9, "t", {}, 1)])[0][1]
    assert b"weight" not in plain and decode_examples(plain)[0][0].weight == 1.0
    d = orjson.loads(value)
    d["weight"][1] = 5000
    good, bad = decode_examples(orjson.dumps(d))
    assert [e.id for e in good] == ["e0", "e2"] and bad[0][2].field == "examples[1].weight"
