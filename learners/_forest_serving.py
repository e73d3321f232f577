"""The forest as a replica scores with it: its trees frozen into tables made once per model
version, so that a request pays for walking the trees and nothing it can compute ahead.

:func:`learners._forest_kernels.forest_predict` (the learning forest's own) works out each
naive-Bayes leaf afresh for every row: the leaf's class totals (a sum over its bins) and two
logarithms per feature. A frozen forest holds them already:

- ``value[t, node]``: a majority leaf's smoothed rate, its whole answer;
- for a leaf that answers by naive Bayes (``nb[t, node] = k``): ``base[k]``, the log odds of
  its rate against a click, and ``llr[k, j, b]``, what bin ``b`` of its ``j``-th feature
  (column ``cols[k, j]``) adds to them. The leaf's probability is ``1 / (1 + exp(d))`` with
  ``d = base[k] + sum_j llr[k, j, row[cols[k, j]]]``, clipped to [-30, 30]: the same sum the
  learning kernel makes, in another order (equal to within rounding).

The kernel walks one tree over every row before the next tree, so a tree's nodes stay in
cache across the candidates of a request.

>>> import random
>>> from learners.forest import OnlineForest
>>> rng = random.Random(0)
>>> X = [{"a": rng.random(), "b": rng.choice("xyz")} for _ in range(3000)]
>>> y = [int(x["a"] > 0.5 and x["b"] != "z") for x in X]
>>> f = OnlineForest(n_trees=3, seed=1)
>>> _ = f.progressive_many(X, y)
>>> rows = f.columns.transform(X[:200], grow=False)
>>> bool(np.allclose(freeze(f).predict(rows), f.predict_learning(rows), rtol=1e-12))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class FrozenForest:
    feat: np.ndarray  # (trees, nodes): the split's column, -1 at a leaf
    kind: np.ndarray
    thr: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # (trees, nodes): a majority leaf's rate
    nb: np.ndarray  # (trees, nodes): the naive-Bayes leaf's row in base/cols/llr, or -1
    base: np.ndarray  # (k,)
    cols: np.ndarray  # (k, features per leaf)
    llr: np.ndarray  # (k, features per leaf, bins + 1)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows))
        frozen_predict(rows, self.feat, self.kind, self.thr, self.left, self.right,
                       self.value, self.nb, self.base, self.cols, self.llr, out)
        return out


def freeze(forest) -> FrozenForest:
    """The serving tables of a built forest (``forest.ready``); its arrays are read, never
    changed."""
    T, N = forest.feat.shape
    reachable = np.arange(N)[None, :] < forest.nnodes[:, None]
    leaf = (forest.feat < 0) & reachable
    value = (forest.pos + 1.0) / (forest.pos + forest.neg + 2.0)
    is_nb = leaf & (forest.slot >= 0) & (forest.lnb < forest.lmc)
    ts, ns = np.nonzero(is_nb)
    nb = np.full((T, N), -1, dtype=np.int32)
    nb[ts, ns] = np.arange(len(ts), dtype=np.int32)
    ss = forest.slot[ts, ns]
    h = forest.hist[ts, ss].astype(np.float64)  # (k, features, bins + 1, 2)
    B = h.shape[2]
    cp = h[:, 0, :, 0].sum(axis=1)  # every feature's histogram holds the leaf's totals
    cn = h[:, 0, :, 1].sum(axis=1)
    pm = value[ts, ns]
    llr = (np.log((h[..., 1] + 0.5) / (cn[:, None, None] + 0.5 * B))
           - np.log((h[..., 0] + 0.5) / (cp[:, None, None] + 0.5 * B)))
    return FrozenForest(forest.feat.copy(), forest.kind.copy(), forest.thr.copy(),
                        forest.left.copy(), forest.right.copy(), value, nb,
                        np.log(1.0 - pm) - np.log(pm),
                        forest.lf[ts, ss].astype(np.int32), np.ascontiguousarray(llr))


@njit(cache=True)
def frozen_predict(rows, feat, kind, thr, left, right, value, nb, base, cols, llr, out):
    """Each row's mean leaf probability over the trees (``out`` starts at zeros)."""
    T = feat.shape[0]
    n_cols = rows.shape[1]
    m = cols.shape[1]
    for t in range(T):
        for i in range(rows.shape[0]):
            node = 0
            while feat[t, node] >= 0:
                b = rows[i, feat[t, node]]
                if kind[t, node] == 0:
                    go_left = b <= thr[t, node]
                else:
                    go_left = b == thr[t, node]
                node = left[t, node] if go_left else right[t, node]
            k = nb[t, node]
            if k < 0:
                out[i] += value[t, node]
            else:
                d = base[k]
                for j in range(m):
                    c = cols[k, j]
                    d += llr[k, j, rows[i, c] if c < n_cols else 0]
                d = max(min(d, 30.0), -30.0)
                out[i] += 1.0 / (1.0 + math.exp(d))
    for i in range(rows.shape[0]):
        out[i] /= T
