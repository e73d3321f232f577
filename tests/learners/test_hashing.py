"""A batch hashed by column (a stream's examples: every dict lists the same names) gives the
rows the per-row path gives, each token in the same place: a model's sums add up in the same
order, so its predictions and updates are the same to the bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from learners.columns import uniform
from learners.hashing import BY_COLUMNS, FeatureHasher, Rows

NAMES = ["u_user_id", "a_ad_id", "a_genre", "c_hour", "a_x"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(-2**63, 2**63 - 1),
                   st.sampled_from(["a", "b", "1", "True"]), st.floats(-2, 2, allow_nan=False))
CROSSES = (("u_user_id", "a_genre"), ("a_ad_id", "c_hour"), ("a_genre", "a_x"))


def by_rows(h: FeatureHasher, X: list[dict]) -> Rows:
    """Batches smaller than BY_COLUMNS take the per-row path: concatenated."""
    parts = [h.transform(X[i:i + BY_COLUMNS - 1]) for i in range(0, len(X), BY_COLUMNS - 1)]
    ends = np.cumsum([0] + [p.indptr[-1] for p in parts[:-1]])
    return Rows(np.concatenate([[0]] + [p.indptr[1:] + e for p, e in zip(parts, ends, strict=True)]),
                np.concatenate([p.indices for p in parts]),
                np.concatenate([p.values for p in parts]))


@settings(max_examples=150, deadline=None)
@given(names=st.permutations(NAMES).map(lambda p: p[:4]),
       rows=st.lists(st.lists(VALUES, min_size=4, max_size=4), min_size=BY_COLUMNS,
                     max_size=BY_COLUMNS + 20),
       int_numeric=st.booleans())
def test_a_uniform_batch_by_column_is_the_batch_by_row(names, rows, int_numeric):
    X = [dict(zip(names, r, strict=True)) for r in rows]
    h = FeatureHasher(12, CROSSES, int_numeric=int_numeric)
    a, b = h.transform(X), by_rows(FeatureHasher(12, CROSSES, int_numeric=int_numeric), X)
    assert a.indptr.tolist() == b.indptr.tolist()
    assert a.indices.tolist() == b.indices.tolist()
    assert a.values.tolist() == b.values.tolist()


def test_the_movielens_stream_hashes_alike_both_ways():
    from learners.checks import stream

    X, _ = stream(300)
    assert uniform(X)  # (so the batch takes the column path)
    a, b = FeatureHasher(14, CROSSES).transform(X), by_rows(FeatureHasher(14, CROSSES), X)
    assert a.indices.tolist() == b.indices.tolist() and a.values.tolist() == b.values.tolist()
