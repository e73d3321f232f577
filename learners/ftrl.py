"""FTRL-Proximal logistic regression over hashed features, the workhorse of ad click prediction
(McMahan et al., "Ad Click Prediction: a View from the Trenches", KDD 2013): per-coordinate
learning rates, L1 for sparsity, L2; the per-example loop compiled with numba."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _kernels as K
from ._frozen_tables import FrozenLinear, linear_weights
from .hashed import FreezableHashed
from .hashing import FeatureHasher, Rows
from .numeric import BucketScaler


class FTRLProximal(FreezableHashed):
    """Logistic regression trained by FTRL-Proximal on hashed features and crosses.

    Parameters: ``alpha``, ``beta`` (per-coordinate rate ``alpha / (beta + sqrt(n))``), ``l1``,
    ``l2``, ``bits`` (``2**bits`` weights), ``crosses`` (pairs of feature names to cross).

    >>> import random
    >>> from learners.metrics import log_loss
    >>> rng = random.Random(0)
    >>> X = [{"ad": rng.choice("abcd"), "user": rng.choice("xyz")} for _ in range(4000)]
    >>> y = [int(rng.random() < (0.8 if x["ad"] == "a" else 0.2)) for x in X]
    >>> model = FTRLProximal(alpha=0.1, bits=12)
    >>> p = model.progressive_many(X, y)
    >>> round(log_loss(y[2000:], p[2000:]), 2)
    0.49
    """

    name = "ftrl"
    BUCKET_ARRAYS = TABLE_ARRAYS = ("z", "n")

    def __init__(self, alpha: float = 0.05, beta: float = 1.0, l1: float = 1.0, l2: float = 1.0,
                 bits: int = 20, crosses: Sequence[tuple[str, str]] = ()):
        self.alpha, self.beta, self.l1, self.l2 = alpha, beta, l1, l2
        self.bits = bits
        self.crosses = tuple(tuple(c) for c in crosses)
        self.hasher = FeatureHasher(bits, self.crosses)
        self.z = np.zeros(self.hasher.size, dtype=np.float64)
        self.n = np.zeros(self.hasher.size, dtype=np.float64)
        self.scaler = BucketScaler(size=self.hasher.size)

    def progressive_rows(self, rows: Rows, y: np.ndarray, learn: np.ndarray) -> np.ndarray:
        learn = np.asarray(learn, dtype=np.float64)  # each example's weight (0: not learned)
        self._learning()
        rows = self.scaler.progressive(rows, learn)
        out = np.empty(len(rows), dtype=np.float64)
        K.ftrl_progressive(rows.indptr, rows.indices, rows.values, y, learn, self.z, self.n,
                           self.alpha, self.beta, self.l1, self.l2, out)
        return out

    def _predict_arrays(self, rows: Rows) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.float64)
        K.ftrl_predict(rows.indptr, rows.indices, rows.values, self.z, self.n, self.alpha,
                       self.beta, self.l1, self.l2, out)
        return out

    def _in_tables(self, a: dict[str, np.ndarray]) -> np.ndarray:
        return (a["n"] > 0) | (a["z"] != 0)

    def _tables(self, buckets: np.ndarray, a: dict[str, np.ndarray]) -> FrozenLinear:
        """The weights of the touched buckets in a compact table (:mod:`learners._frozen_tables`)."""
        return FrozenLinear(buckets, linear_weights(a["z"], a["n"], self.alpha, self.beta,
                                                    self.l1, self.l2))

    def _dense_state(self) -> dict[str, np.ndarray]:
        return {"z": self.z, "n": self.n}

    def _touched(self) -> np.ndarray:
        return self.n > 0
