"""Progressive validation: every prediction is scored before the model learns its label.

Cumulative log loss, ROC AUC, accuracy and calibration (mean predicted vs observed CTR), the same
over a sliding window of the last ``window`` examples, each example weighted by its weight (an
example of weight 2 counts as two; ``examples`` counts rows, ``weight`` sums their weights),
and drift detection on the loss (the Page-Hinkley test, Page 1954: an alarm when the loss's
cumulative rise above its running mean passes a threshold; compiled, and its state is five
numbers). The cumulative AUC comes from score histograms (``bins`` buckets; ties within a
bucket share their rank), the window AUC is exact.

>>> m = Progressive(window=4)
>>> m.update([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 1])
>>> s = m.snapshot()
>>> s["examples"], round(s["logloss"], 4), s["auc"], s["accuracy"], s["mean_p"], s["ctr"]
(4, 0.4004, 1.0, 0.75, 0.55, 0.75)
>>> w = Progressive(window=4)
>>> w.update([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 1], [1, 1, 1, 3])  # the worst row weighs 3
>>> s = w.snapshot()
>>> s["examples"], s["weight"], round(s["logloss"], 4), round(s["window_logloss"], 4)
(4, 6.0, 0.5723, 0.5723)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .metrics import EPS, log_loss, roc_auc
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
class LossCurve:
    """The log loss along the stream, in memory that does not grow with it: the weighted mean
    loss of consecutive blocks of ``block`` examples, at most ``points`` blocks; when they are
    all used, neighbours merge in pairs and blocks double (what ``aimass train --plot`` draws).

    >>> c = LossCurve(points=4, block=2)
    >>> c.add(np.array([1.0, 1, 0, 0, 2, 2, 4, 4, 3]), np.ones(9))
    >>> c.points()  # (examples at the block's end, its mean loss); the last block is partial
    [(4, 0.5), (8, 3.0), (9, 3.0)]
    """

    def __init__(self, points: int = 200, block: int = 50):
        self.max_points, self.block = points - points % 2, block
        self.ends: list[int] = []
        self.loss: list[float] = []  # weighted loss sum of each block
        self.weight: list[float] = []
        self.seen = self.cur_n = 0
        self.cur_loss = self.cur_w = 0.0

    def add(self, losses: np.ndarray, w: np.ndarray) -> None:
        wl, i, n = w * losses, 0, len(losses)
        while i < n:
            take = min(self.block - self.cur_n, n - i)
            self.cur_loss += float(wl[i:i + take].sum())
            self.cur_w += float(w[i:i + take].sum())
            self.cur_n += take
            self.seen += take
            i += take
            if self.cur_n == self.block:
                self.ends.append(self.seen)
                self.loss.append(self.cur_loss)
                self.weight.append(self.cur_w)
                self.cur_n, self.cur_loss, self.cur_w = 0, 0.0, 0.0
                if len(self.ends) >= self.max_points:
                    self._halve()

    def _halve(self) -> None:
        self.ends = self.ends[1::2]
        self.loss = [a + b for a, b in zip(self.loss[::2], self.loss[1::2], strict=True)]
        self.weight = [a + b for a, b in zip(self.weight[::2], self.weight[1::2], strict=True)]
        self.block *= 2

    def points(self) -> list[tuple[int, float]]:
        out = [(e, s / w) for e, s, w in zip(self.ends, self.loss, self.weight, strict=True)
               if w > 0]
        if self.cur_n and self.cur_w > 0:
            out.append((self.seen, self.cur_loss / self.cur_w))
        return out


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
        self.w_sum = 0.0
        self._ww = np.ones(window, dtype=np.float64)
        self.curve = LossCurve()

    # (a state saved before weights lacks these: its examples weighed 1; or before curves)
    w_sum: float | None = None
    _ww: np.ndarray | None = None
    curve: LossCurve | None = None

    def update(self, p, y, w=None) -> None:
        """Count the predictions ``p`` of labels ``y``, with weights ``w`` (default 1)."""
        p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
        y = np.asarray(y, dtype=np.int64)
        if not len(p):
            return
        w = np.ones(len(p)) if w is None else np.asarray(w, dtype=np.float64)
        if self.w_sum is None:
            self.w_sum, self._ww = float(self.n), np.ones(self.window)
            self.pos_hist = self.pos_hist.astype(np.float64)
            self.neg_hist = self.neg_hist.astype(np.float64)
        losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        self.n += len(p)
        self.w_sum += float(w.sum())
        self.loss_sum += float((w * losses).sum())
        self.correct += float(w[(p >= 0.5) == (y == 1)].sum())
        self.p_sum += float((w * p).sum())
        self.y_sum += float(w[y == 1].sum())
        b = np.minimum((p * self.bins).astype(np.int64), self.bins - 1)
        self.pos_hist = self.pos_hist + np.bincount(b[y == 1], w[y == 1], minlength=self.bins)
        self.neg_hist = self.neg_hist + np.bincount(b[y == 0], w[y == 0], minlength=self.bins)
        k = min(len(p), self.window)
        slots = (self._wpos + np.arange(k)) % self.window
        self._wp[slots] = p[-k:]
        self._wy[slots] = y[-k:]
        self._ww[slots] = w[-k:]
        self._wpos += k
        self._detect_drift(losses)
        if self.curve is None:
            self.curve = LossCurve()
        self.curve.add(losses, w)

    def _detect_drift(self, losses: np.ndarray) -> None:
        _page_hinkley(losses, self._ph, self.drift_delta, self.drift_threshold, 30)

    @property
    def drifts(self) -> int:
        return int(self._ph[4])

    def auc(self) -> float:
        pos, neg = self.pos_hist, self.neg_hist
        npos, nneg = float(pos.sum()), float(neg.sum())
        if npos <= 0 or nneg <= 0:
            return float("nan")
        neg_below = np.cumsum(neg) - neg  # negatives in lower buckets
        return float((pos * neg_below).sum() + 0.5 * (pos * neg).sum()) / (npos * nneg)

    def snapshot(self) -> dict:
        n = self.n
        ws = float(n) if self.w_sum is None else self.w_sum
        k = min(self._wpos, self.window)
        wp, wy = self._wp[:k], self._wy[:k]
        ww = np.ones(k) if self._ww is None else self._ww[:k]
        return {
            "examples": n,
            "weight": ws,
            "logloss": self.loss_sum / ws if ws > 0 else math.nan,
            "auc": self.auc(),
            "accuracy": self.correct / ws if ws > 0 else math.nan,
            "mean_p": self.p_sum / ws if ws > 0 else math.nan,
            "ctr": self.y_sum / ws if ws > 0 else math.nan,
            "window_logloss": log_loss(wy, wp, ww) if k else math.nan,
            "window_auc": roc_auc(wy, wp, ww) if k else math.nan,
            "drifts": self.drifts,
        }
