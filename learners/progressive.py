"""Progressive validation: every prediction is scored before the model learns its label.

Cumulative log loss, ROC AUC, accuracy and calibration (mean predicted vs observed CTR), the same
over a sliding window of the last ``window`` examples, and drift detection on the loss (the
Page-Hinkley test, Page 1954: an alarm when the loss's cumulative rise above its running mean
passes a threshold; compiled, and its state is five numbers). The cumulative AUC comes from
score histograms (``bins`` buckets; ties within a bucket share their rank), the window AUC is
exact.

>>> m = Progressive(window=4)
>>> m.update([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 1])
>>> s = m.snapshot()
>>> s["examples"], round(s["logloss"], 4), s["auc"], s["accuracy"], s["mean_p"], s["ctr"]
(4, 0.4004, 1.0, 0.75, 0.55, 0.75)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .metrics import EPS, roc_auc
from .state import persistent


@njit(cache=True)
def _page_hinkley(losses, st, delta, threshold, min_instances):
    """Page-Hinkley over ``losses``; ``st`` = [n, mean, cumulative, its minimum, drifts]."""
    for x in losses:
        st[0] += 1.0
        st[1] += (x - st[1]) / st[0]
        st[2] += x - st[1] - delta
        st[3] = min(st[3], st[2])
        if st[0] >= min_instances and st[2] - st[3] > threshold:
            st[4] += 1.0
            st[0], st[1], st[2], st[3] = 0.0, 0.0, 0.0, 0.0


@persistent
class Progressive:
    def __init__(self, window: int = 10_000, bins: int = 4096, drift_delta: float = 0.005,
                 drift_threshold: float = 50.0):
        self.window, self.bins = window, bins
        self.drift_delta, self.drift_threshold = drift_delta, drift_threshold
        self.n = 0
        self.loss_sum = 0.0
        self.correct = 0
        self.p_sum = 0.0
        self.y_sum = 0
        self.pos_hist = np.zeros(bins, dtype=np.int64)
        self.neg_hist = np.zeros(bins, dtype=np.int64)
        self._wp = np.zeros(window, dtype=np.float64)
        self._wy = np.zeros(window, dtype=np.int8)
        self._wpos = 0
        self._ph = np.zeros(5)  # Page-Hinkley: n, mean, cumulative, minimum, drifts

    def update(self, p, y) -> None:
        p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
        y = np.asarray(y, dtype=np.int64)
        if not len(p):
            return
        losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        self.n += len(p)
        self.loss_sum += float(losses.sum())
        self.correct += int(((p >= 0.5) == (y == 1)).sum())
        self.p_sum += float(p.sum())
        self.y_sum += int(y.sum())
        b = np.minimum((p * self.bins).astype(np.int64), self.bins - 1)
        self.pos_hist += np.bincount(b[y == 1], minlength=self.bins)
        self.neg_hist += np.bincount(b[y == 0], minlength=self.bins)
        k = min(len(p), self.window)
        slots = (self._wpos + np.arange(k)) % self.window
        self._wp[slots] = p[-k:]
        self._wy[slots] = y[-k:]
        self._wpos += k
        self._detect_drift(losses)

    def _detect_drift(self, losses: np.ndarray) -> None:
        _page_hinkley(losses, self._ph, self.drift_delta, self.drift_threshold, 30)

    @property
    def drifts(self) -> int:
        return int(self._ph[4])

    def auc(self) -> float:
        pos, neg = self.pos_hist, self.neg_hist
        npos, nneg = int(pos.sum()), int(neg.sum())
        if not npos or not nneg:
            return float("nan")
        neg_below = np.cumsum(neg) - neg  # negatives in lower buckets
        return float((pos * neg_below).sum() + 0.5 * (pos * neg).sum()) / (npos * nneg)

    def snapshot(self) -> dict:
        n = self.n
        k = min(self._wpos, self.window)
        wp, wy = self._wp[:k], self._wy[:k]
        wl = (-(wy * np.log(wp) + (1 - wy) * np.log(1 - wp))).mean() if k else math.nan
        return {
            "examples": n,
            "logloss": self.loss_sum / n if n else math.nan,
            "auc": self.auc(),
            "accuracy": self.correct / n if n else math.nan,
            "mean_p": self.p_sum / n if n else math.nan,
            "ctr": self.y_sum / n if n else math.nan,
            "window_logloss": float(wl),
            "window_auc": roc_auc(wy, wp) if k else math.nan,
            "drifts": self.drifts,
        }
