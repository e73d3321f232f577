"""Vote: each member votes click (p >= 0.5) or no click. When a side has at least
``threshold`` of the votes, the answer is the mean probability of that side; otherwise the
members conflict and ``policy`` settles it:

- ``"weighted"``: the Hedge-weighted average of all members (weights follow live loss);
- ``"average"``: the plain average;
- ``"best"``: the member with the lowest recent loss;
- ``"abstain"``: 0.5 (no opinion), counted.

>>> import numpy as np
>>> v = Vote(threshold=0.75, policy="abstain")
>>> P = np.array([[0.9, 0.8, 0.7, 0.6],   # 4 of 4 say click
...               [0.9, 0.8, 0.3, 0.2]])  # 2 against 2: a conflict
>>> v.combine_progressive(P, [1, 0]).round(2).tolist(), v.conflicts
([0.75, 0.5], 1)
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from .base import Combiner, progressive_args
from .weighted import Hedge

POLICIES = _kernels.POLICIES


class Vote(Combiner):
    name = "vote"

    def __init__(self, threshold: float = 0.6, policy: str = "weighted", eta: float = 0.5,
                 decay: float = 0.999):
        if not 0.5 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0.5, 1], got {threshold}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.threshold, self.policy, self.eta, self.decay = threshold, policy, eta, decay
        self.hedge = Hedge(eta, decay)
        self.conflicts = 0
        self.decisions = 0

    def combine_one(self, p: np.ndarray) -> float:
        self.decisions += 1
        w_all = self.hedge.combine_one(p)  # keeps the Hedge state in step
        votes = p >= 0.5
        share = votes.mean()
        if share >= self.threshold:
            return float(p[votes].mean())
        if 1 - share >= self.threshold:
            return float(p[~votes].mean())
        self.conflicts += 1
        if self.policy == "weighted":
            return w_all
        if self.policy == "average":
            return float(p.mean())
        if self.policy == "best":
            return float(p[int(np.argmax(self.hedge.weights))])
        return 0.5

    def combine_many(self, P: np.ndarray) -> np.ndarray:
        """:meth:`combine_one` for every row at once (serving: nothing learned or counted).

        >>> v = Vote(threshold=0.75, policy="average")
        >>> P = np.array([[0.9, 0.8, 0.7, 0.6], [0.9, 0.8, 0.3, 0.2], [0.1, 0.2, 0.3, 0.6]])
        >>> v.combine_many(P).round(3).tolist()  # all click; a conflict (the average); no click
        [0.75, 0.55, 0.2]
        """
        P = np.asarray(P, dtype=np.float64)
        votes = P >= 0.5
        n_yes = votes.sum(axis=1)
        share = n_yes / P.shape[1]
        yes = np.where(votes, P, 0.0).sum(axis=1) / np.maximum(n_yes, 1)
        no = np.where(votes, 0.0, P).sum(axis=1) / np.maximum(P.shape[1] - n_yes, 1)
        if self.policy == "weighted":
            settle = self.hedge.combine_many(P)
        elif self.policy == "average":
            settle = P.mean(axis=1)
        elif self.policy == "best":
            w = self.hedge.weights
            settle = P[:, int(np.argmax(w)) if len(w) else 0]
        else:
            settle = np.full(len(P), 0.5)
        return np.where(share >= self.threshold, yes,
                        np.where(1 - share >= self.threshold, no, settle))

    def combine_progressive(self, P: np.ndarray, y, learn=None) -> np.ndarray:
        P, y, learn = progressive_args(P, y, learn, self.hedge.losses)
        out = np.empty(len(y))
        if len(y):
            h = self.hedge
            h.start(P.shape[1])
            self.conflicts += _kernels.vote_progressive(
                P, y, learn, h.losses, h.eta, h.decay, self.threshold,
                _kernels.POLICIES.index(self.policy), out)
            self.decisions += len(y)
        return out

    def learn_one(self, p: np.ndarray, y: float, w: float = 1.0) -> None:
        self.hedge.learn_one(p, y, w)

    def state(self) -> dict:
        return {"conflicts": self.conflicts, "decisions": self.decisions,
                "weights": self.hedge.weights.tolist()}
