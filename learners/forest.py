"""An online random forest of histogram trees: the nonlinear member, compiled.

Each tree grows as a Hoeffding tree (Domingos & Hulten, "Mining High-Speed Data Streams", KDD
2000): a leaf keeps class histograms of a random subset of the features (binned), and every
``grace`` examples it splits on the best of them when the Hoeffding bound says the best beats
the second best, or they tie within ``tau``. The forest follows Adaptive Random Forests (Gomes
et al., "Adaptive random forests for evolving data stream classification", Machine Learning
2017): online bagging (each tree sees an example k ~ Poisson(``lam``) times, Oza & Russell
2001), a random feature subset per leaf, and a tree whose recent loss falls well behind the
others' is replaced by a fresh one (drift). Where those use a drift detector per tree, this
compares each tree's discounted log loss with the forest's median.

Features become bins (:class:`Columns`): a numeric column's bins are the quantiles of its
first ``warmup`` values (an int column with more distinct values than bins is numeric too); a
categorical column hashes its values into bins and splits one value against the rest. Until
the warm-up is done the forest keeps the examples, then learns them in order; meanwhile, from a
quarter of the warm-up on, an early forest binned on the rows kept so far predicts (and learns)
in its place, and is dropped once the real one is built (before it: the base rate); on river's
Phishing (1,250 rows) that took the forest's progressive log loss from 0.293 to 0.251. Leaves
predict the Laplace-smoothed click rate; a new leaf starts from its parent's counts on its side
of the split.

>>> import random
>>> from learners.metrics import roc_auc
>>> rng = random.Random(0)
>>> X = [{"a": rng.random(), "b": rng.random()} for _ in range(6000)]
>>> y = [int((x["a"] - 0.5) ** 2 + (x["b"] - 0.5) ** 2 < 0.1) for x in X]  # a disc
>>> p = OnlineForest(seed=1).progressive_many(X, y)
>>> round(roc_auc(y[3000:], p[3000:]), 2) > 0.95  # a linear model is at 0.5 here
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._forest_columns import Columns
from ._forest_kernels import forest_predict, forest_progressive, reset_tree
from ._forest_serving import FrozenForest, freeze
from .base import Features, Freezable, Learner
from .state import ReadForServing

__all__ = ["Columns", "OnlineForest"]


class OnlineForest(Learner, Freezable, ReadForServing):
    """Parameters: ``n_trees``, ``max_depth``, ``grace`` (examples at a leaf between split
    attempts), ``bins``, ``features_per_leaf``, ``delta`` and ``tau`` (the Hoeffding bound
    and its tie threshold), ``min_gain``, ``lam`` (online bagging), ``drift_ratio`` (a tree
    whose discounted log loss exceeds the median's by this factor is replaced; 0: never),
    ``max_nodes`` per tree, ``max_features`` (columns), ``warmup`` (rows that fix the
    columns' kinds and bins), ``seed``.

    ``tau`` is wider than the Hoeffding-tree literature's 0.05: with ``grace`` 50 and entropy
    gains below 1 bit, 0.05 holds a leaf for ~900 examples before a tie is broken, and a
    forest that must earn its place on streams of a few thousand rows grows too slowly
    (measured on river's Bananas and Phishing, ops/bench/quality.py: log loss 0.399 -> 0.294
    and 0.334 -> 0.309; on the MovieLens clicks and Adult its loss moves by under 0.008)."""

    name = "forest"

    def __init__(self, n_trees: int = 10, max_depth: int = 14, grace: int = 50, bins: int = 32,
                 features_per_leaf: int = 8, delta: float = 0.01, tau: float = 0.2,
                 min_gain: float = 1e-3, lam: float = 6.0, drift_ratio: float = 1.3,
                 max_nodes: int = 2047, max_features: int = 64, warmup: int = 200,
                 seed: int = 0):
        self.n_trees, self.max_depth, self.grace, self.bins = n_trees, max_depth, grace, bins
        self.features_per_leaf, self.delta, self.tau = features_per_leaf, delta, tau
        self.min_gain, self.lam, self.drift_ratio = min_gain, lam, drift_ratio
        self.max_nodes, self.max_features, self.warmup, self.seed = (max_nodes, max_features,
                                                                     warmup, seed)
        self.columns = Columns(bins, max_features)
        self.ready = False
        self.buffer_x: list[Features] = []
        self.buffer_y: list[int] = []
        self.buffer_w: list[float] = []  # the kept rows' weights
        self.base = np.zeros(2)  # positives, negatives (before the trees are built)
        self.early: OnlineForest | None = None  # predicts during the warm-up (see above)
        self._frozen: FrozenForest | None = None  # the serving tables of these arrays
        T, L, m = n_trees, max_nodes // 2 + 1, features_per_leaf
        self.feat = np.full((T, max_nodes), -1, dtype=np.int32)
        self.kind = np.zeros((T, max_nodes), dtype=np.int8)
        self.thr = np.zeros((T, max_nodes), dtype=np.int32)
        self.left = np.zeros((T, max_nodes), dtype=np.int32)
        self.right = np.zeros((T, max_nodes), dtype=np.int32)
        self.depth = np.zeros((T, max_nodes), dtype=np.int32)
        self.pos = np.zeros((T, max_nodes), dtype=np.float64)
        self.neg = np.zeros((T, max_nodes), dtype=np.float64)
        self.lmc = np.zeros((T, max_nodes), dtype=np.float64)  # a leaf's loss, majority
        self.lnb = np.zeros((T, max_nodes), dtype=np.float64)  # ... and naive Bayes
        self.slot = np.full((T, max_nodes), -1, dtype=np.int32)
        self.since = np.zeros((T, max_nodes), dtype=np.float64)
        self.free = np.zeros((T, L), dtype=np.int32)
        self.nfree = np.zeros(T, dtype=np.int32)
        self.hist = np.zeros((T, L, m, bins + 1, 2), dtype=np.float32)
        self.lf = np.zeros((T, L, m), dtype=np.int32)
        self.nnodes = np.ones(T, dtype=np.int32)
        self.loss = np.zeros(T)
        self.seen = np.zeros(T)
        self.rng = (np.arange(1, T + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                    ^ np.uint64(seed + 1)).reshape(T, 1)

    def _arrays(self):
        return (self.feat, self.kind, self.thr, self.left, self.right, self.depth, self.pos,
                self.neg, self.slot, self.free, self.nfree, self.hist, self.lf, self.nnodes,
                self.since, self.loss, self.seen, self.rng, self.lmc, self.lnb)

    def _build(self) -> None:
        """End of the warm-up: fix the columns, plant the trees, learn the kept rows."""
        self.columns.fit(self.buffer_x)
        n_cols = len(self.columns.names)
        (feat, kind, thr, left, right, depth, pos, neg, slot, free, nfree, hist, lf, nnodes,
         since, loss, seen, rng, lmc, lnb) = self._arrays()
        for t in range(self.n_trees):
            reset_tree(t, feat, depth, pos, neg, slot, free, nfree, hist, lf, nnodes,
                        n_cols, self.features_per_leaf, rng, loss, seen, lmc, lnb)
        self.ready = True
        self.early = None
        X, y, w = self.buffer_x, self.buffer_y, self.buffer_w
        self.buffer_x, self.buffer_y, self.buffer_w = [], [], []
        self._run(X, np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.float64), True)

    def _run(self, X, y, learn, do_learn, rows: np.ndarray | None = None) -> np.ndarray:
        self._refuse()
        self._frozen = None  # the arrays change
        if rows is None:
            rows = self.columns.transform(X, grow=do_learn)
        out = np.empty(len(rows))
        forest_progressive(rows, y, learn, do_learn, len(self.columns.names), self.bins,
                           self.max_depth, float(self.grace), self.delta, self.tau,
                           self.min_gain, self.lam, 0.995, self.drift_ratio, *self._arrays(),
                           out)
        return out

    def freeze(self) -> None:
        if self.ready and self._frozen is None:
            self._frozen = freeze(self)
        if self.early is not None:
            self.early.freeze()

    def serve_only(self) -> None:
        """Freeze, then drop the learning arrays (the leaves' histograms: 32 MB by default):
        the tables and the columns are all that scoring reads."""
        self.freeze()
        if self.early is not None:
            self.early.serve_only()
        if self.ready:
            self._drop_for_serving(_ARRAYS)

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        self.freeze()
        return self._frozen.predict(rows)

    def predict_learning(self, rows: np.ndarray) -> np.ndarray:
        """What :meth:`_predict` gives, by the learning kernel (no tables): a reference."""
        out = np.empty(len(rows))
        forest_predict(rows, self.feat, self.kind, self.thr, self.left, self.right, self.pos,
                       self.neg, self.slot, self.hist, self.lf, self.lmc, self.lnb, out)
        return out

    def progressive_many(self, X, y, learn=None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        learn = np.ones(len(X)) if learn is None else np.asarray(learn, dtype=np.float64)
        out = np.empty(len(X))
        i = 0
        while i < len(X) and not self.ready:  # the warm-up: rows kept
            out[i] = self._warm_p([X[i]])[0]
            if learn[i] > 0:
                self.base[0 if y[i] > 0.5 else 1] += learn[i]
                self.buffer_x.append(X[i])
                self.buffer_y.append(int(y[i]))
                self.buffer_w.append(float(learn[i]))
                if self.early is not None:
                    self.early.progressive_many([X[i]], y[i:i + 1], learn[i:i + 1])
                if len(self.buffer_x) >= self.warmup:
                    self._build()
                elif self.early is None and len(self.buffer_x) == self._early_at():
                    self._plant_early()
            i += 1
        if i < len(X):
            out[i:] = self._run(X[i:], y[i:], learn[i:], True)
        return out

    def _early_at(self) -> int:
        """Rows kept when the early forest is planted (never, for a warm-up under 100)."""
        at = max(50, self.warmup // 4)
        return at if at < self.warmup else -1

    def _plant_early(self) -> None:
        params = {k: getattr(self, k) for k in self._init_params()}
        self.early = OnlineForest(**{**params, "warmup": len(self.buffer_x)})
        self.early.progressive_many(self.buffer_x, self.buffer_y, self.buffer_w)

    def _warm_p(self, X: Sequence[Features]) -> np.ndarray:
        if self.early is not None:
            return self.early.predict_proba_many(X)
        return np.full(len(X), (self.base[0] + 1.0) / (self.base.sum() + 2.0))

    def predict_proba_many(self, X: Sequence[Features]) -> np.ndarray:
        if not self.ready:
            return self._warm_p(X)
        return self._predict(self.columns.transform(X, grow=False))

    def predict_request(self, shared: Features, items: Sequence[Features]) -> np.ndarray:
        if not self.ready:
            return self._warm_p([{**shared, **it} for it in items])
        return self._predict(self.columns.transform_request(shared, items))

    def predict_proba_one(self, x: Features) -> float:
        return float(self.predict_proba_many([x])[0])

    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        self.progressive_many([x], [y], [w])

    def learn_many(self, X, y) -> None:
        self.progressive_many(X, y)

    # -- state: the constructor's parameters, the columns, the arrays
    def to_state(self) -> dict:
        self._refuse()
        return {"params": {k: getattr(self, k) for k in self._init_params()},
                "columns": self.columns.to_state(), "ready": self.ready,
                "buffer_x": self.buffer_x, "buffer_y": self.buffer_y, "buffer_w": self.buffer_w,
                "early": None if self.early is None else self.early.to_state(),
                "arrays": {k: getattr(self, k) for k in (*_ARRAYS, "base")}}

    @classmethod
    def from_state(cls, state: dict, copy: bool = True) -> OnlineForest:
        f = cls(**state["params"])
        f.columns = Columns.from_state(state["columns"])
        f.ready = bool(state["ready"])
        f.buffer_x, f.buffer_y = list(state["buffer_x"]), list(state["buffer_y"])
        # (a state saved before weights has none: its kept rows weigh 1)
        f.buffer_w = [float(w) for w in state.get("buffer_w", [1.0] * len(f.buffer_y))]
        if len(f.buffer_w) != len(f.buffer_y):
            raise ValueError("forest.buffer_w: one weight per kept row")
        early = state.get("early")  # (absent in a state saved before early forests)
        f.early = None if early is None else cls.from_state(early)
        for k, a in state["arrays"].items():
            mine = getattr(f, k)
            a = np.asarray(a, dtype=mine.dtype)
            if a.shape != mine.shape:
                raise ValueError(f"forest.{k}: shape {a.shape} does not fit {mine.shape}")
            setattr(f, k, a.copy() if copy else a)
        return f

    @classmethod
    def from_serving_state(cls, state: dict) -> OnlineForest:
        f = cls.from_state(state, copy=False)  # (the decoder's arrays, read once, dropped)
        f.serve_only()
        return f


_ARRAYS = ("feat", "kind", "thr", "left", "right", "depth", "pos", "neg", "slot", "free", "nfree",
           "hist", "lf", "nnodes", "since", "loss", "seen", "rng", "lmc", "lnb")
