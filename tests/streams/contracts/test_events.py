"""Event contracts: round trips, and every kind of bad input refused with the field named."""

import math

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.contracts.events import (
    AdRequest,
    Candidate,
    DeadLetter,
    Feedback,
    InvalidEvent,
    TrainingExample,
    dead_letter,
    decode,
    encode,
)

GOOD_REQUEST = {"id": "r1", "event_time": 1.7e9, "tenant": "acme", "user": {"age": 31, "g": "F"},
                "context": {"hour": 3}, "candidates": [{"ad_id": "a1", "features": {"x": 1.5}},
                                                       {"ad_id": "a2"}], "priority": 3}


def test_request_round_trip():
    req = decode(AdRequest, orjson.dumps(GOOD_REQUEST))
    assert req.candidates == [Candidate("a1", {"x": 1.5}), Candidate("a2", {})]
    assert req.priority == 3 and req.deadline is None
    assert decode(AdRequest, encode(req)) == req


@pytest.mark.parametrize("cls,event", [
    (Feedback, Feedback("f1", 1.0, "t", "r1", "a1", "click")),
    (TrainingExample, TrainingExample("e1", 2.0, "t", {"a": 1, "b": None}, 1, "file:x")),
    (DeadLetter, DeadLetter("d", 3.0, "topic", 0, 7, "tenant", "is required", "{}")),
])
def test_round_trips(cls, event):
    assert decode(cls, encode(event)) == event


def _with(**changes):
    d = {**GOOD_REQUEST, **changes}
    return orjson.dumps({k: v for k, v in d.items() if v is not ...})


@pytest.mark.parametrize("raw,field,reason", [
    (b"{oops", "value", "not valid JSON"),
    (b"[1]", "value", "JSON object"),
    (None, "value", "empty"),
    (b"\xff\xfe", "value", "not valid JSON"),
    (_with(id=...), "id", "required"),
    (_with(id=""), "id", "non-empty"),
    (_with(id="x" * 500), "id", "longer than"),
    (_with(event_time="yesterday"), "event_time", "Unix seconds"),
    (_with(event_time=-1), "event_time", "Unix seconds"),
    (_with(tenant=...), "tenant", "required"),
    (_with(tenant="no spaces"), "tenant", "must match"),
    (_with(user=...), "user", "required"),
    (_with(user=[1]), "user", "object of features"),
    (_with(user={"a": {"nested": 1}}), "user.a", "string, number"),
    (_with(candidates=[]), "candidates", "non-empty"),
    (_with(candidates=[{"features": {}}]), "candidates[0].ad_id", "required"),
    (_with(candidates=[{"ad_id": "a"}, 5]), "candidates[1]", "object"),
    (_with(candidates=[{"ad_id": "a", "features": {"x": [1]}}]), "candidates[0].features.x",
     "string, number"),
    (_with(priority=12), "priority", "0..9"),
    (_with(deadline="soon"), "deadline", "Unix seconds"),
])
def test_bad_requests_name_the_field(raw, field, reason):
    with pytest.raises(InvalidEvent) as exc:
        decode(AdRequest, raw)
    assert exc.value.field == field
    assert reason in exc.value.reason


def test_non_finite_feature_refused():
    with pytest.raises(InvalidEvent, match="user.x: must be finite"):
        AdRequest.from_dict({**GOOD_REQUEST, "user": {"x": math.inf}})


@pytest.mark.parametrize("changes,field", [
    ({"kind": "like"}, "kind"), ({"request_id": None}, "request_id"), ({"ad_id": 3.5}, "ad_id"),
])
def test_bad_feedback(changes, field):
    d = {"id": "f", "event_time": 1, "tenant": "t", "request_id": "r", "ad_id": "a",
         "kind": "click", **changes}
    with pytest.raises(InvalidEvent) as exc:
        Feedback.from_dict(d)
    assert exc.value.field == field


@pytest.mark.parametrize("label", [2, -1, "yes", 0.5, None])
def test_bad_labels(label):
    d = {"id": "e", "event_time": 1, "tenant": "t", "features": {}, "label": label}
    with pytest.raises(InvalidEvent) as exc:
        TrainingExample.from_dict(d)
    assert exc.value.field == "label"


def test_dead_letter_keeps_payload_and_reason():
    raw = b'{"id": 1, "tenant": "t"}\xff'
    try:
        decode(AdRequest, raw)
    except InvalidEvent as exc:
        dl = dead_letter(raw, exc, "aimass.ad-requests", 2, 41, now=5.0)
    assert dl.source_topic == "aimass.ad-requests" and (dl.partition, dl.offset) == (2, 41)
    assert dl.field == "value" and "JSON" in dl.reason
    assert dl.payload.encode("utf-8", "backslashreplace") == b'{"id": 1, "tenant": "t"}\\xff'


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                     st.floats(allow_nan=True, allow_infinity=True))
_good_id = st.text(min_size=1, max_size=3)
_features = st.dictionaries(st.text(max_size=3), _scalars, max_size=3)
_candidate = st.one_of(  # mostly well-formed: one bad detail at a time
    st.fixed_dictionaries({"ad_id": _good_id}, optional={"features": _features}),
    st.fixed_dictionaries({"ad_id": _good_id, "features": _features}),
    st.fixed_dictionaries({"ad_id": st.one_of(st.just(""), st.integers(), st.none(),
                                              st.text(min_size=129, max_size=130))}),
    st.fixed_dictionaries({"ad_id": _good_id, "features": st.one_of(
        st.lists(_scalars, max_size=2), st.dictionaries(st.text(max_size=2), st.lists(
            _scalars, max_size=1), min_size=1, max_size=2))}),
    _scalars)


@settings(max_examples=400, deadline=None)
@given(st.lists(_candidate, min_size=1, max_size=4))
@example([{"ad_id": "a", "features": {"x": 1.5}}, {"ad_id": "b", "features": {"x": math.nan}}])
@example([{"ad_id": "a", "features": {"x": -math.inf, "y": "z"}}])
@example([{"ad_id": "a", "features": {"x": [1]}}])
@example([{"ad_id": True}])
def test_the_fast_candidate_check_agrees_with_the_field_by_field_one(cands):
    """The fast path accepts only what the field-by-field path accepts, to the same candidates;
    whatever it declines, the field-by-field path decides (and names the bad field)."""
    from streams.contracts.events import _candidates_checked, _candidates_fast

    fast = _candidates_fast(cands)
    try:
        checked = _candidates_checked(cands)
    except InvalidEvent:
        assert fast is None
        return
    assert fast is None or fast == checked
    if all(c["ad_id"].__class__ is str for c in cands):  # (a numeric id is made a string)
        assert fast == checked  # it declines nothing else the field-by-field path accepts



def test_test_rows_keep_their_flag_through_an_examples_batch():
    from streams.contracts.events import TrainingExample
    from streams.contracts.example_batches import decode_examples, encode_examples

    exs = [TrainingExample(f"e{i}", 1.7e9, "acme", {"x": i}, i % 2, test=i == 1)
           for i in range(3)]
    [(_, raw)] = encode_examples(exs)
    back, bad = decode_examples(raw)
    assert not bad and [e.test for e in back] == [False, True, False]
    [(_, plain)] = encode_examples([exs[0]])
    assert b'"test"' not in plain  # the column only where a row is a test row
    forged = orjson.loads(raw)
    forged["test"] = [False, "yes", False]
    good, bad = decode_examples(orjson.dumps(forged))
    assert len(good) == 2 and bad[0][2].field == "examples[1].test"
