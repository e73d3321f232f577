"""The overfitting guard: compares each model's train-side (progressive) loss with its holdout
loss, over the same recent window, at every check.

An alert is raised when, for ``patience`` checks in a row, either the holdout loss exceeds the
train-side loss by more than ``gap`` (the model fits what it learns better than what it does
not: overfitting), or the holdout loss is worse than its best so far by more than
``tolerance`` (relative: the model is degrading). A model's best state is remembered by the
caller when :meth:`check` reports a new best, so it can be rolled back to it.

>>> g = OverfitGuard(gap=0.05, patience=2, tolerance=0.1, min_holdout=0)
>>> [g.check("m", train, hold, 1000) for train, hold in
...  [(0.60, 0.61), (0.55, 0.60), (0.50, 0.62), (0.45, 0.63)]]
['best', 'best', None, 'gap']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .state import persistent


@persistent
@dataclass
class OverfitGuard:
    gap: float = 0.05
    patience: int = 3
    tolerance: float = 0.05
    min_holdout: int = 500
    best: dict[str, float] = field(default_factory=dict)
    strikes: dict[str, int] = field(default_factory=dict)

    def check(self, model: str, train_loss: float, holdout_loss: float,
              holdout_examples: int) -> str | None:
        """``'best'`` (a new best holdout loss: remember this state), ``'gap'`` or
        ``'degrading'`` (an alert), or None."""
        if holdout_examples < self.min_holdout or not math.isfinite(holdout_loss):
            return None
        best = self.best.get(model, math.inf)
        if holdout_loss < best:
            self.best[model] = holdout_loss
            self.strikes[model] = 0
            return "best"
        reason = None
        if holdout_loss - train_loss > self.gap:
            reason = "gap"
        elif holdout_loss > best * (1 + self.tolerance):
            reason = "degrading"
        self.strikes[model] = self.strikes.get(model, 0) + 1 if reason else 0
        if reason and self.strikes[model] >= self.patience:
            self.strikes[model] = 0
            return reason
        return None
