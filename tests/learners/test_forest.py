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
