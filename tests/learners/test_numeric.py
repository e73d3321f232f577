"""Numbers in hashed rows: standardised, and once a bucket has enough values, binned by its
quantiles into tokens, so the linear members learn curves and the FM learns grids."""

from __future__ import annotations

import random

import numpy as np

from learners.fm import FactorizationMachine
from learners.ftrl import FTRLProximal
from learners.hashing import FeatureHasher
from learners.metrics import roc_auc
from learners.numeric import BucketScaler
from learners.state import decode, encode


def test_a_bucket_is_binned_once_its_sample_is_full_and_serving_bins_the_same():
    h = FeatureHasher(bits=12)
    s = BucketScaler(size=h.size, bins=4, sample_size=8)
    X = [{"x": float(v)} for v in range(20)]
    rows = s.progressive(h.transform(X), np.ones(20, dtype=bool))
    per_row = np.diff(rows.indptr)
    assert per_row[:8].tolist() == [2] * 8  # the bias and the value, until 8 values are kept
    assert per_row[8:].tolist() == [3] * 12  # then each row also has its bin's token
    bins = {int(rows.indices[rows.indptr[i] + 2]) for i in range(8, 20)}
    assert len(bins) == 1  # 8..19 all lie above the sample's (0..7) last edge, 6
    low = s.transform(h.transform([{"x": 3.0}, {"x": 5.0}, {"x": -1.0}]))
    assert len({int(t) for t in low.indices[2::3]} | bins) == 4  # bins 1, 2, 0 and 3
    again = decode(*encode(s))
    served = again.transform(h.transform(X[12:13]))
    np.testing.assert_array_equal(served.indices, rows.indices[rows.indptr[12]:rows.indptr[13]])
    assert len(BucketScaler().transform(h.transform(X)).indices) == 40  # no size: no bins


def test_linear_members_learn_a_curve_and_the_fm_a_grid():
    rng = random.Random(1)
    X = [{"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)} for _ in range(6000)]
    band = [int(abs(x["a"]) < 0.5) for x in X]  # not monotone in a: no line separates it
    p = FTRLProximal(alpha=0.2, bits=16).progressive_many(X, band)
    assert roc_auc(band[3000:], p[3000:]) > 0.9
    disc = [int(x["a"] ** 2 + x["b"] ** 2 < 0.5) for x in X]  # needs a and b together
    p = FactorizationMachine(bits=16, seed=3).progressive_many(X, disc)
    assert roc_auc(disc[3000:], p[3000:]) > 0.9


def test_serving_scales_as_learning_does_with_nothing_learned():
    h = FeatureHasher(bits=12)
    X = [{"x": float(v), "y": v % 3 + 0.5, "c": str(v % 5), "n": v} for v in range(40)]
    for s in (BucketScaler(size=h.size, bins=4, sample_size=8), BucketScaler()):
        s.progressive(h.transform(X), np.ones(40, dtype=bool))
        rows = h.transform(X[::-1])
        served = s.transform(rows)  # one compiled pass
        learned = s.progressive(rows, np.zeros(40, dtype=bool))  # the learning path, no update
        assert served.indptr.tolist() == learned.indptr.tolist()
        assert served.indices.tolist() == learned.indices.tolist()
        assert served.values.tolist() == learned.values.tolist()
    unseen = s.transform(h.transform([{"z": 1.5}]))  # a number no row had: left as it is
    assert 1.5 in unseen.values.tolist()
