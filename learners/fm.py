"""A factorisation machine on hashed features: every pair of features interacts through learned
k-dimensional factors (Rendle, 2010), so user x ad affinities are learned without listing
crosses. Linear part by FTRL-Proximal, factors by AdaGrad; compiled per-example loop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _kernels as K
from ._frozen_tables import FrozenLinear, factors_of, linear_weights
from .hashed import FreezableHashed
from .hashing import FeatureHasher, Rows
from .numeric import BucketScaler


class FactorizationMachine(FreezableHashed):
    """Hashed FM for click prediction.

    Parameters: ``n_factors``, ``lr`` and ``l2_v`` (factors), ``init_std`` (factor init),
    ``alpha``, ``beta``, ``l1``, ``l2`` (the FTRL linear part), ``bits``, ``crosses``, ``seed``.

    >>> import random
    >>> from learners.metrics import log_loss
    >>> rng = random.Random(1)
    >>> X = [{"user": rng.choice("abcdef"), "ad": rng.choice("uvwxyz")} for _ in range(6000)]
    >>> likes = {(u, a) for u, a in zip("abcdef", "uvwxyz")}
    >>> y = [int(rng.random() < (0.9 if (x["user"], x["ad"]) in likes else 0.1)) for x in X]
    >>> fm = FactorizationMachine(n_factors=4, lr=0.1, init_std=0.1, bits=10, seed=1)
    >>> round(log_loss(y[3000:], fm.progressive_many(X, y)[3000:]), 2)
    0.4

    A linear model cannot see that interaction:

    >>> from learners.ftrl import FTRLProximal
    >>> round(log_loss(y[3000:], FTRLProximal(bits=10).progressive_many(X, y)[3000:]), 2)
    0.55
    """

    name = "fm"
    BUCKET_ARRAYS = ("z", "n", "V", "G", "touched", "ready")
    TABLE_ARRAYS = ("z", "n", "V", "ready")

    def __init__(self, n_factors: int = 8, lr: float = 0.05, l2_v: float = 1e-4,
                 init_std: float = 0.01, alpha: float = 0.05, beta: float = 1.0,
                 l1: float = 1.0, l2: float = 1.0, bits: int = 20,
                 crosses: Sequence[tuple[str, str]] = (), seed: int = 0):
        self.n_factors, self.lr, self.l2_v, self.init_std = n_factors, lr, l2_v, init_std
        self.alpha, self.beta, self.l1, self.l2 = alpha, beta, l1, l2
        self.bits, self.seed = bits, seed
        self.crosses = tuple(tuple(c) for c in crosses)
        self.hasher = FeatureHasher(bits, self.crosses)
        size = self.hasher.size
        self.z = np.zeros(size, dtype=np.float64)
        self.n = np.zeros(size, dtype=np.float64)
        # factors of a bucket are drawn (deterministically, see factor_init) when first used:
        # zeros allocate lazily, so a new or restored model costs no random draws
        self.V = np.zeros((size, n_factors), dtype=np.float64)
        self.G = np.zeros((size, n_factors), dtype=np.float64)
        self.touched = np.zeros(size, dtype=np.bool_)  # learned (saved with the state)
        self.ready = np.zeros(size, dtype=np.bool_)  # factors written (learned or drawn)
        self.scaler = BucketScaler(size=self.hasher.size)

    def progressive_rows(self, rows: Rows, y: np.ndarray, learn: np.ndarray) -> np.ndarray:
        learn = np.asarray(learn, dtype=np.float64)  # each example's weight (0: not learned)
        self._learning()
        rows = self.scaler.progressive(rows, learn)
        out = np.empty(len(rows), dtype=np.float64)
        K.fm_progressive(rows.indptr, rows.indices, rows.values, y, learn, self.z, self.n,
                         self.V, self.G, self.touched, self.ready, self.seed, self.init_std,
                         self.alpha, self.beta, self.l1, self.l2, self.lr, self.l2_v, out)
        return out

    def _predict_arrays(self, rows: Rows) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.float64)
        K.fm_predict(rows.indptr, rows.indices, rows.values, self.z, self.n, self.V,
                     self.ready, self.seed, self.init_std, self.alpha, self.beta, self.l1,
                     self.l2, out)
        return out

    def _in_tables(self, a: dict[str, np.ndarray]) -> np.ndarray:
        return (a["n"] > 0) | (a["z"] != 0) | a["ready"]

    def _tables(self, buckets: np.ndarray, a: dict[str, np.ndarray]) -> FrozenLinear:
        """The weights and factors of the touched buckets in a compact table
        (:mod:`learners._frozen_tables`); the others' factors are drawn where used."""
        return FrozenLinear(
            buckets, linear_weights(a["z"], a["n"], self.alpha, self.beta, self.l1, self.l2),
            factors_of(buckets, a["V"], a["ready"], self.seed, self.init_std), self.seed,
            self.init_std)

    def _table_arrays(self, saved: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**saved, "ready": saved["touched"]}  # (as _load_extra_state sets it)

    def _dense_state(self) -> dict[str, np.ndarray]:
        return {"z": self.z, "n": self.n, "V": self.V, "G": self.G, "touched": self.touched}

    def _touched(self) -> np.ndarray:
        return (self.n > 0) | self.touched

    def _load_extra_state(self, extra: dict) -> None:
        super()._load_extra_state(extra)
        self.ready = self.touched.copy()  # the saved rows' factors; the rest drawn on use
