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
cache across the candidates of a request. A node is one int64 word (``nodes[t, node]``: its
column, kind, threshold and left child, the right child being the next node, as the learning
forest always makes them; -1 at a leaf), so a step down a tree reads 8 bytes where the learning
arrays take five reads from five tables, and a 2,047-node tree is 16 KiB, not 40: a replica's
caches, cleared by everything else it does between requests, refill a fifth as much.

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

# a node's word: column | kind << 16 | (threshold + 2**15) << 24 | left child << 40
_KIND, _THR, _LEFT = 16, 24, 40


def pack_nodes(feat, kind, thr, left, right) -> np.ndarray:
    """(trees, nodes) int64 words of the learning forest's node arrays; -1 at a leaf."""
    inner = feat >= 0
    if not np.all(right[inner] == left[inner] + 1):
        raise ValueError("a right child is not its left sibling's next node")
    if inner.any() and (feat[inner].max() >= 1 << 16 or left[inner].max() >= 1 << 23
                        or np.abs(thr[inner]).max() >= 1 << 15):
        raise ValueError("a node's fields do not fit its word")
    words = (feat.astype(np.int64) | kind.astype(np.int64) << _KIND
             | (thr.astype(np.int64) + (1 << 15)) << _THR | left.astype(np.int64) << _LEFT)
    return np.where(inner, words, -1)


@dataclass(frozen=True)
class FrozenForest:
    nodes: np.ndarray  # (trees, nodes) int64: see pack_nodes
    value: np.ndarray  # (trees, nodes): a majority leaf's rate
    nb: np.ndarray  # (trees, nodes): the naive-Bayes leaf's row in base/cols/llr, or -1
    base: np.ndarray  # (k,)
    cols: np.ndarray  # (k, features per leaf)
    llr: np.ndarray  # (k, features per leaf, bins + 1)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros(len(rows))
        frozen_predict(rows, self.nodes, self.value, self.nb, self.base, self.cols, self.llr,
                       out)
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
    return FrozenForest(pack_nodes(forest.feat, forest.kind, forest.thr, forest.left,
                                   forest.right), value, nb,
                        np.log(1.0 - pm) - np.log(pm),
                        forest.lf[ts, ss].astype(np.int32), np.ascontiguousarray(llr))


@njit(cache=True)
def frozen_predict(rows, nodes, value, nb, base, cols, llr, out):
    """Each row's mean leaf probability over the trees (``out`` starts at zeros)."""
    T = nodes.shape[0]
    n_cols = rows.shape[1]
    m = cols.shape[1]
    for t in range(T):
        tree = nodes[t]
        for i in range(rows.shape[0]):
            node = 0
            w = tree[0]
            while w >= 0:
                b = rows[i, w & 0xFFFF]
                thr = ((w >> _THR) & 0xFFFF) - (1 << 15)
                if (w >> _KIND) & 0xFF == 0:
                    go_left = b <= thr
                else:
                    go_left = b == thr
                node = (w >> _LEFT) + (0 if go_left else 1)
                w = tree[node]
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
