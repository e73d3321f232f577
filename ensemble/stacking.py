"""Stacking: an online logistic regression over the members' logits (plus a bias), trained by
AdaGrad on the members' predict-before-learn outputs: the meta-learner never trains on a
prediction that saw the label. It starts as the average of the logits.

>>> import numpy as np
>>> from learners.metrics import log_loss
>>> rng = np.random.default_rng(1)
>>> y = (rng.random(4000) < 0.5).astype(float)
>>> a = np.clip(np.where(y == 1, 0.7, 0.3) + rng.normal(0, 0.1, 4000), 0.01, 0.99)
>>> b = 1 - a  # a member that is reliably wrong: stacking learns to flip it
>>> p = Stacking().combine_progressive(np.column_stack([a, b]), y)
>>> log_loss(y[2000:], p[2000:]) < log_loss(y[2000:], a[2000:])
True
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels
from .base import Combiner, logit, progressive_args


class Stacking(Combiner):
    name = "stacking"

    def __init__(self, lr: float = 0.05, l2: float = 1e-4):
        self.lr, self.l2 = lr, l2
        self.w: np.ndarray | None = None
        self._g2: np.ndarray | None = None

    def _z(self, p: np.ndarray) -> np.ndarray:
        return np.append(logit(p), 1.0)

    def start(self, members: int) -> None:
        """The average of ``members``' logits, unless it has learned already."""
        if self.w is None:
            self.w = np.append(np.full(members, 1.0 / members), 0.0)
            self._g2 = np.full(members + 1, 1e-6)

    def combine_one(self, p: np.ndarray) -> float:
        self.start(len(p))
        s = float(self.w @ self._z(p))
        return 1.0 / (1.0 + math.exp(-max(min(s, 35.0), -35.0)))

    def combine_many(self, P: np.ndarray) -> np.ndarray:
        self.start(P.shape[1])
        s = logit(P) @ self.w[:-1] + self.w[-1]
        return 1.0 / (1.0 + np.exp(-np.clip(s, -35.0, 35.0)))

    def combine_progressive(self, P: np.ndarray, y, learn=None) -> np.ndarray:
        P, y, learn = progressive_args(P, y, learn, self.w, extra=1)
        out = np.empty(len(y))
        if len(y):
            self.start(P.shape[1])
            _kernels.stacking_progressive(P, y, learn, self.w, self._g2, self.lr, self.l2, out)
        return out

    def learn_one(self, p: np.ndarray, y: float, w: float = 1.0) -> None:
        z = self._z(p)
        s = float(self.w @ z)
        q = 1.0 / (1.0 + math.exp(-max(min(s, 35.0), -35.0)))
        g = w * (q - y) * z + self.l2 * self.w
        self._g2 += g * g
        self.w -= self.lr * g / np.sqrt(self._g2)

    def state(self) -> dict:
        return {"weights": [] if self.w is None else self.w.tolist()}
