"""The plain average of the members' probabilities.

>>> import numpy as np
>>> from learners.metrics import log_loss
>>> P = np.array([[0.9, 0.7], [0.2, 0.4], [0.6, 0.8]])
>>> Average().combine_progressive(P, [1, 0, 1]).round(2).tolist()
[0.8, 0.3, 0.7]
>>> round(log_loss([1, 0, 1], Average().combine_progressive(P, [1, 0, 1])), 4)
0.3122
"""

from __future__ import annotations

import numpy as np

from .base import Combiner, progressive_args


class Average(Combiner):
    name = "average"

    def combine_one(self, p: np.ndarray) -> float:
        return float(np.mean(p))

    def combine_many(self, P: np.ndarray) -> np.ndarray:
        return P.mean(axis=1)

    def combine_progressive(self, P: np.ndarray, y, learn=None) -> np.ndarray:
        """Nothing to learn: every row at once."""
        P, y, _ = progressive_args(P, y, learn)
        return P.mean(axis=1) if len(y) else np.empty(0)
