"""Progressive validation: every prediction is scored before the model learns its label.

Cumulative log loss, ROC AUC, accuracy and calibration (mean predicted vs observed CTR), the same
over a sliding window of the last ``window`` examples, and drift detection on the loss (river's
ADWIN). The cumulative AUC comes from score histograms (``bins`` buckets; ties within a bucket
share their rank), the window AUC is exact.

>>> m = Progressive(window=4)
>>> m.update([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 1])
>>> s = m.snapshot()
>>> s["examples"], round(s["logloss"], 4), s["auc"], s["accuracy"], s["mean_p"], s["ctr"]
(4, 0.4004, 1.0, 0.75, 0.55, 0.75)
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import EPS, roc_auc


class Progressive:
    def __init__(self, window: int = 10_000, bins: int = 4096, drift_delta: float = 0.002):
        self.window, self.bins, self.drift_delta = window, bins, drift_delta
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
        self.drifts = 0
        self._adwin = None

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
        if self._adwin is None:
            from river.drift import ADWIN

            self._adwin = ADWIN(delta=self.drift_delta)
        for loss in losses.tolist():
            self._adwin.update(loss)
            if self._adwin.drift_detected:
                self.drifts += 1

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
