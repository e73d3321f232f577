"""The forest as replicas score with it (learners/_forest_serving.py): its frozen tables give
what the learning kernel gives, are made again once the forest learns, and a request's bins are
those of its merged feature dicts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from learners.checks import stream
from learners.forest import Columns, OnlineForest


def trained(n: int = 4000, seed: int = 2) -> tuple[OnlineForest, list, list]:
    X, y = stream(n, seed=seed)
    f = OnlineForest(n_trees=5, seed=seed)
    f.progressive_many(X, y)
    return f, X, y


def test_frozen_tables_give_the_learning_kernels_probabilities():
    f, X, _ = trained()
    X = [x if i % 7 else dict(list(x.items())[1:]) for i, x in enumerate(X)]  # some missing
    assert ((f.feat < 0) & (f.slot >= 0) & (f.lnb < f.lmc)).any()  # naive-Bayes leaves in use
    np.testing.assert_allclose(f.predict_proba_many(X), f.predict_learning(
        f.columns.transform(X, grow=False)), rtol=1e-12, atol=1e-15)


def test_learning_drops_the_tables():
    f, X, y = trained(3000)
    before = f.predict_proba_many(X[:500])  # the tables are made here
    f.progressive_many(X[::-1], y[::-1])  # the trees change
    after = f.predict_proba_many(X[:500])
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, f.predict_learning(f.columns.transform(X[:500],
                                                                              grow=False)),
                               rtol=1e-12, atol=1e-15)


VALUES = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["a", "b", "zz"]),
                   st.floats(-2, 2, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(shared=st.dictionaries(st.sampled_from(["u", "n", "c"]), VALUES),
       items=st.lists(st.dictionaries(st.sampled_from(["a", "n", "b"]), VALUES), max_size=6))
def test_request_bins_equal_merged_bins(shared, items):
    cols = Columns(bins=8, max_features=16)
    cols.fit([{"u": "a", "n": 0.5, "c": 1, "a": "b", "b": 2.0}, {"u": "b", "n": -1.0, "a": "a"},
              {"n": 1.5, "c": 3, "b": -0.5}])
    got = cols.transform_request(shared, items)
    want = cols.transform([{**shared, **it} for it in items], grow=False)
    assert got.tolist() == want.tolist()


def test_a_node_word_holds_its_column_kind_threshold_and_children():
    from learners._forest_serving import _KIND, _LEFT, _THR, pack_nodes

    f, _, _ = trained()
    words = pack_nodes(f.feat, f.kind, f.thr, f.left, f.right)
    inner = f.feat >= 0
    assert inner.sum() > 100 and (words[~inner] == -1).all()
    w = words[inner]
    assert ((w & 0xFFFF) == f.feat[inner]).all()
    assert (((w >> _KIND) & 0xFF) == f.kind[inner]).all()
    assert ((((w >> _THR) & 0xFFFF) - (1 << 15)) == f.thr[inner]).all()
    assert ((w >> _LEFT) == f.left[inner]).all() and ((w >> _LEFT) + 1 == f.right[inner]).all()


def test_nodes_that_do_not_fit_a_word_are_refused_not_misread():
    import pytest

    from learners._forest_serving import pack_nodes

    f, _, _ = trained(2000)
    right = f.right.copy()
    node = int(np.flatnonzero(f.feat[0] >= 0)[0])
    right[0, node] += 1  # a right child that is not its left sibling's next node
    with pytest.raises(ValueError, match="next node"):
        pack_nodes(f.feat, f.kind, f.thr, f.left, right)
    thr = f.thr.copy()
    thr[0, node] = 1 << 15
    with pytest.raises(ValueError, match="fit"):
        pack_nodes(f.feat, f.kind, thr, f.left, f.right)
