"""The prediction kernels sum the entries every row of a batch starts with once
(``shared_prefix``): a request's rows score to the bit as each row alone, whatever the rows
share, including rows alike only in part of that start."""

from __future__ import annotations

import numpy as np
import pytest

from learners import _kernels as K
from learners.checks import stream
from learners.fm import FactorizationMachine
from learners.ftrl import FTRLProximal
from learners.hashing import Rows
from streams.contracts.events import Candidate
from streams.contracts.features import request_features


def rows_of(model, n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    user = {"user_id": "7", "age": 31, "gender": "F", "score": 0.25}
    cands = [Candidate(str(rng.integers(40)), {"genre": str(rng.choice(["Drama", "Comedy"])),
                                               "year": int(rng.integers(1950, 2000))})
             for _ in range(n)]
    shared, items = request_features(user, {"hour": 9}, cands)
    return model.scaler.transform(model.hasher.transform_request(shared, items))


def one_by_one(predict, rows) -> np.ndarray:
    out = np.empty(len(rows))
    for i in range(len(rows)):
        s, e = rows.indptr[i], rows.indptr[i + 1]
        o = np.empty(1)
        predict(np.array([0, e - s]), rows.indices[s:e].copy(), rows.values[s:e].copy(), o)
        out[i] = o[0]
    return out


@pytest.mark.parametrize("cls", [FTRLProximal, FactorizationMachine])
def test_a_batch_scores_each_row_as_alone(cls):
    model = cls()
    X, y = stream(1500, seed=3)
    model.learn_many(X, y)
    if cls is FTRLProximal:
        def predict(indptr, idx, val, out):
            K.ftrl_predict(indptr, idx, val, model.z, model.n, model.alpha, model.beta,
                           model.l1, model.l2, out)
    else:
        def predict(indptr, idx, val, out):
            K.fm_predict(indptr, idx, val, model.z, model.n, model.V, model.ready, model.seed,
                         model.init_std, model.alpha, model.beta, model.l1, model.l2, out)
    rows = rows_of(model)
    assert K.shared_prefix(rows.indptr, rows.indices, rows.values) > 3  # the user's tokens
    together = np.empty(len(rows))
    predict(rows.indptr, rows.indices, rows.values, together)
    assert together.tolist() == one_by_one(predict, rows).tolist()
    # rows that part within the shared start: the prefix ends where the first one differs
    vals = rows.values.copy()
    vals[rows.indptr[5] + 2] += 1.0
    mixed = np.empty(len(rows))
    predict(rows.indptr, rows.indices, vals, mixed)
    assert K.shared_prefix(rows.indptr, rows.indices, vals) == 2
    assert mixed.tolist() == one_by_one(predict, Rows(rows.indptr, rows.indices, vals)).tolist()


def test_no_rows():
    out = np.empty(0)
    K.fm_predict(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0),
                 np.zeros(4), np.zeros(4), np.zeros((4, 2)), np.zeros(4, dtype=np.bool_), 0,
                 0.01, 0.05, 1.0, 1.0, 1.0, out)
    assert K.shared_prefix(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                           np.zeros(0)) == 0
