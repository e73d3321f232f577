"""An ensemble is itself a learner: members plus a combiner.

>>> from learners.registry import build
>>> from learners.metrics import log_loss
>>> from river import datasets
>>> data = list(datasets.Phishing())
>>> X, y = [x for x, _ in data], [int(t) for _, t in data]
>>> ens = Ensemble(build(["ftrl", "river_logreg", "forest"]), Stacking())  # linear + trees
>>> p = ens.progressive_many(X, y)
>>> round(log_loss(y, p), 3) < min(round(log_loss(y, m), 3) for m in ens.last_members.values())
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learners.base import Features, Learner

from .average import Average
from .base import Combiner
from .stacking import Stacking
from .vote import Vote
from .weighted import Hedge


def build_combiner(name: str, vote_threshold: float = 0.6,
                   vote_policy: str = "weighted") -> Combiner:
    if name == "average":
        return Average()
    if name == "weighted":
        return Hedge()
    if name == "vote":
        return Vote(vote_threshold, vote_policy)
    if name == "stacking":
        return Stacking()
    raise ValueError(f"unknown ensemble strategy {name!r}: average, weighted, vote, stacking")


class Ensemble(Learner):
    name = "ensemble"

    def __init__(self, members: dict[str, Learner], combiner: Combiner):
        self.members = members
        self.combiner = combiner
        self.last_members: dict[str, np.ndarray] = {}

    def progressive_many(self, X: Sequence[Features], y, learn=None) -> np.ndarray:
        outs: dict[str, np.ndarray] = {}
        for name, m in self.members.items():  # a multi-output model gives several members
            outs.update(m.progressive_outputs(X, y, learn, name))
        self.last_members = outs
        P = np.column_stack(list(outs.values()))
        return self.combiner.combine_progressive(P, y, learn)

    def predict_proba_many(self, X: Sequence[Features]) -> np.ndarray:
        cols = []
        for name, m in self.members.items():
            cols += list(m.predict_outputs(X, name).values())
        P = np.column_stack(cols)
        return np.array([self.combiner.combine_one(row) for row in P])

    def predict_proba_one(self, x: Features) -> float:
        return float(self.predict_proba_many([x])[0])

    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        self.progressive_many([x], [y], [w])

    def clone(self) -> Ensemble:
        return Ensemble({n: m.clone() for n, m in self.members.items()}, self.combiner.clone())
