"""The join, without Kafka: windows, watermarks, release order, late and orphan feedback."""

from __future__ import annotations

import pytest

from streams.contracts.events import AdRequest, Candidate, Feedback
from streams.join.joiner import Joiner


def req(rid, t, ads=("a",)):
    return AdRequest(rid, float(t), "t", {"user_id": "u"}, [Candidate(a, {"g": "x"}) for a in ads])


def fb(rid, t, ad="a", kind="impression"):
    return Feedback(f"{rid}-{ad}-{kind}", float(t), "t", rid, ad, kind)


def test_request_order_release_and_labels():
    j = Joiner(window=10)
    out = j.on_request(req("r1", 0)) + j.on_feedback(fb("r1", 0))
    out += j.on_request(req("r2", 1)) + j.on_feedback(fb("r2", 1))
    out += j.on_feedback(fb("r2", 2, kind="click"))  # r2 settled, but r1 is still open
    assert out == []
    out = j.advance(11)  # r1's window closes
    assert [(e.id, e.label) for e in out] == [("r1/a", 0), ("r2/a", 1)]
    assert out[0].features["a_ad_id"] == "a" and out[0].features["u_user_id"] == "u"


def test_arrival_order_releases_clicks_at_once():
    j = Joiner(window=10, order="arrival")
    j.on_request(req("r1", 0))
    j.on_feedback(fb("r1", 0))
    assert [(e.id, e.label) for e in j.on_feedback(fb("r1", 3, kind="click"))] == [("r1/a", 1)]
    assert j.advance(20) == []  # nothing left to say about r1


def test_watermark_is_the_slower_input():
    j = Joiner(window=10)
    j.on_request(req("r1", 0))
    j.on_feedback(fb("r1", 0))
    for i in range(2, 50):  # feedback runs far ahead ...
        j.on_feedback(fb(f"x{i}", i))
    assert j.advance() == []  # ... but requests have only reached t=0: nothing closes
    j.on_request(req("r9", 30))
    assert [e.id for e in j.advance()] == ["r1/a"]


def test_feedback_before_its_request():
    j = Joiner(window=10)
    j.on_feedback(fb("r1", 5))
    j.on_feedback(fb("r1", 6, kind="click"))
    assert [(e.id, e.label) for e in j.on_request(req("r1", 5))] == [("r1/a", 1)]


def test_late_and_orphan_feedback_are_counted_and_dropped():
    j = Joiner(window=10)
    j.on_request(req("r1", 0))
    j.on_feedback(fb("r1", 0))
    j.advance(11)
    assert j.on_feedback(fb("r1", 12, kind="click")) == []
    j.on_feedback(fb("ghost", 20))
    j.advance(40)
    assert j.stats["late_feedback"] == 1 and j.stats["orphan_feedback"] == 1


def test_multi_candidate_request():
    j = Joiner(window=10)
    j.on_request(req("r1", 0, ads=("a", "b", "c")))
    for ad in "ab":
        j.on_feedback(fb("r1", 0, ad))
    assert j.on_feedback(fb("r1", 1, "b", "click")) == []  # a may still be clicked
    got = j.advance(11)
    assert [(e.id, e.label) for e in got] == [("r1/a", 0), ("r1/b", 1)]  # c was never shown


def test_flush_closes_everything_and_drains_finished():
    j = Joiner(window=1000)
    for i in range(5):
        j.on_request(req(f"r{i}", i))
        j.on_feedback(fb(f"r{i}", i))
    assert len(j) == 5 and j.flush() and len(j) == 0
    assert sorted(j.drain_finished()) == [f"r{i}" for i in range(5)]
    assert j.drain_finished() == []


def test_bad_order_name():
    with pytest.raises(ValueError, match="order"):
        Joiner(order="sometimes")
