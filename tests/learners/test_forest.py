"""The online forest's warm-up: an early forest predicts from a quarter of it on, and leaves
no trace in the forest built at its end."""

from __future__ import annotations

import numpy as np

from learners.checks import stream
from learners.forest import OnlineForest
from learners.state import decode, encode


def test_an_early_forest_predicts_during_the_warm_up_and_leaves_no_trace():
    X, y = stream(400, seed=5)
    f = OnlineForest(seed=3, warmup=200)
    p = f.progressive_many(X[:120], y[:120])
    base_rate = [(sum(y[:i]) + 1) / (i + 2) for i in range(50)]
    np.testing.assert_allclose(p[:50], base_rate)  # before a quarter of the warm-up
    assert len(set(p[50:120])) > 10  # then the early forest's, row by row
    tree, arrays = encode(f)  # a checkpoint in the middle of the warm-up
    again = decode(tree, arrays)
    np.testing.assert_allclose(again.predict_proba_many(X[300:340]), f.predict_proba_many(X[300:340]))
    np.testing.assert_allclose(again.progressive_many(X[120:400], y[120:400]),
                               f.progressive_many(X[120:400], y[120:400]))
    # once built, the forest is the one the kept rows make, with or without the early one
    plain = OnlineForest(seed=3, warmup=200)
    plain.progressive_many(X[:199], y[:199])
    plain.early = None  # (as if it had never been planted)
    plain.progressive_many(X[199:400], y[199:400])
    np.testing.assert_allclose(plain.predict_proba_many(X[:100]), f.predict_proba_many(X[:100]))


def test_a_values_bin_does_not_depend_on_the_values_seen_before():
    """True, 1 and 1.0 are one dict key: each is binned by its class and value, so a replica
    and its trainer (whose memos saw values in other orders) bin a row alike."""
    from itertools import permutations

    from learners.forest import Columns

    values = [1, True, 1.0, "1", None, 0, False]
    seen = set()
    for order in permutations(values, 4):
        c = Columns(bins=32, max_features=4)
        c.fit([{"x": "a"}, {"x": "b"}])
        by_column = c.transform_request({}, [{"x": v} for v in order])[:, 0].tolist()
        one_by_one = [int(c.transform_request({"x": v}, [{}])[0, 0]) for v in order]
        assert by_column == one_by_one
        seen.add(tuple(sorted(zip(map(repr, order), by_column, strict=True))))
    bins = {}
    for pairs in seen:
        for value, b in pairs:
            bins.setdefault(value, set()).add(b)
    assert all(len(b) == 1 for b in bins.values()), bins
