"""A combiner turns the members' predictions of a batch into one prediction per example.

It works progressively, example by example: it combines the members' predictions of example i
(made before any member learned i) with what it has learned from examples before i, and only
then learns from example i (unless it is held out). So a combiner never learns from a
prediction that saw its label, and its own prediction of i never saw i's label.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod

import numpy as np

from learners.state import persistent

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def example_losses(p: np.ndarray, y: float) -> np.ndarray:
    """Log loss of each member's prediction ``p`` (shape m) for label ``y``."""
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def progressive_args(P, y, learn, state: np.ndarray | None = None, extra: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``combine_progressive``'s arguments as the kernels take them: float64, C order. A
    kernel checks no bounds: ``P`` must be (n, m) with one label and weight per row, and a
    learned ``state`` (one value per member, plus ``extra``) of the same members, else
    ValueError, as numpy's example-by-example arithmetic would raise."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    learn = np.ones(len(y)) if learn is None else np.ascontiguousarray(learn, dtype=np.float64)
    P = np.ascontiguousarray(P, dtype=np.float64)
    if len(y) and (P.ndim != 2 or len(P) != len(y) or len(learn) != len(y)):
        raise ValueError(f"predictions {P.shape} for {len(y)} labels and {len(learn)} weights")
    if len(y) and state is not None and len(state) != P.shape[1] + extra:
        raise ValueError(f"{P.shape[1]} members' predictions for a combiner of "
                         f"{len(state) - extra}")
    return P, y, learn


class Combiner(ABC):
    name = "combiner"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        persistent(cls)  # a model set's state holds its combiners (learners.state)

    def combine_progressive(self, P: np.ndarray, y, learn=None) -> np.ndarray:
        """``P``: (n, m) member predictions; ``learn``: each example's weight (0: combined,
        not learned). Returns n combined predictions."""
        y = np.asarray(y, dtype=np.float64)
        learn = np.ones(len(y)) if learn is None else np.asarray(learn, dtype=np.float64)
        out = np.empty(len(y))
        for i in range(len(y)):
            out[i] = self.combine_one(P[i])
            if learn[i] > 0:
                self.learn_one(P[i], float(y[i]), float(learn[i]))
        return out

    @abstractmethod
    def combine_one(self, p: np.ndarray) -> float: ...

    def combine_many(self, P: np.ndarray) -> np.ndarray:
        """Combine every row of ``P`` with the current state, learning nothing (serving)."""
        return np.fromiter((self.combine_one(row) for row in P), dtype=np.float64,
                           count=len(P))

    def learn_one(self, p: np.ndarray, y: float,  # noqa: B027 - stateless by default
                  w: float = 1.0) -> None:
        pass

    def state(self) -> dict:
        """What a dashboard shows (weights, conflicts)."""
        return {}

    def clone(self) -> Combiner:
        """A fresh combiner with the same configuration (the constructor's arguments)."""
        params = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return type(self)(**{k: getattr(self, k) for k in params})
