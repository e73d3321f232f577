"""`ranked`: the same order and scores whether the few-candidate path or numpy's sort ranks."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from streams.contracts.events import AdRequest, Candidate
from streams.serving import ranking

SCORES = st.one_of(st.floats(0, 1), st.sampled_from([0.5, 0.25, math.inf, -math.inf, math.nan]))


def _same(a, b):
    return [d["ad_id"] for d in a] == [d["ad_id"] for d in b] and all(
        x["score"] == y["score"] or x["score"] != x["score"] and y["score"] != y["score"]
        for x, y in zip(a, b, strict=True))


@given(st.lists(SCORES, min_size=16, max_size=120))
def test_numpys_path_ranks_as_the_plain_one(scores):
    req = AdRequest("r", 1.0, "t", {}, [Candidate(f"ad{i}") for i in range(len(scores))])
    big = ranking.ranked(req, scores)
    ranking.MANY_RANKED, was = 10**9, ranking.MANY_RANKED
    try:
        plain = ranking.ranked(req, scores)
    finally:
        ranking.MANY_RANKED = was
    assert _same(big, plain)


def test_ties_keep_the_given_order():
    rng = random.Random(0)
    scores = [rng.choice([0.1, 0.2]) for _ in range(50)]
    req = AdRequest("r", 1.0, "t", {}, [Candidate(f"ad{i}") for i in range(50)])
    out = ranking.ranked(req, scores)
    top = [d["ad_id"] for d in out if d["score"] == 0.2]
    assert top == [f"ad{i}" for i in range(50) if scores[i] == 0.2]
