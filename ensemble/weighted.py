"""Weighted average, the weights following each member's live progressive loss (Hedge):
w_m ∝ exp(-eta * L_m), where L_m is the member's exponentially discounted sum of log losses
(``decay`` per example), so weights track recent quality and recover after drift.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = (rng.random(3000) < 0.5).astype(float)
>>> good = np.clip(np.where(y == 1, 0.8, 0.2) + rng.normal(0, 0.05, 3000), 0.01, 0.99)
>>> P = np.column_stack([good, np.full(3000, 0.5)])  # an informed member and a coin
>>> h = Hedge(eta=0.5)
>>> p = h.combine_progressive(P, y)
>>> h.weights.round(2).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from .base import Combiner, example_losses, progressive_args


class Hedge(Combiner):
    name = "weighted"

    def __init__(self, eta: float = 0.5, decay: float = 0.999):
        self.eta, self.decay = eta, decay
        self.losses: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        if self.losses is None:
            return np.array([])
        z = -self.eta * (self.losses - self.losses.min())
        w = np.exp(z)
        return w / w.sum()

    def start(self, members: int) -> None:
        """Equal weights over ``members``, unless it has learned already."""
        if self.losses is None:
            self.losses = np.zeros(members)

    def combine_one(self, p: np.ndarray) -> float:
        self.start(len(p))
        return float(self.weights @ p)

    def combine_many(self, P: np.ndarray) -> np.ndarray:
        if self.losses is None:
            return P.mean(axis=1)
        return P @ self.weights

    def combine_progressive(self, P: np.ndarray, y, learn=None) -> np.ndarray:
        P, y, learn = progressive_args(P, y, learn, self.losses)
        out = np.empty(len(y))
        if len(y):
            self.start(P.shape[1])
            _kernels.hedge_progressive(P, y, learn, self.losses, self.eta, self.decay, out)
        return out

    def learn_one(self, p: np.ndarray, y: float, w: float = 1.0) -> None:
        self.start(len(p))
        self.losses = self.decay * self.losses + w * example_losses(p, y)

    def state(self) -> dict:
        return {"weights": self.weights.tolist()}
