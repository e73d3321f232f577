"""Metrics for click prediction: log loss, ROC AUC (exact, ties averaged), calibration."""

from __future__ import annotations

import numpy as np

EPS = 1e-15


def log_loss(y, p, w=None) -> float:
    """Mean binary cross-entropy, each example weighted by ``w`` (default 1).

    >>> round(log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
    >>> round(log_loss([1, 0], [0.9, 0.2], w=[3, 1]), 4)  # the first counts three times
    0.1348
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    if not len(y):
        return float("nan")
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if w is None:
        return float(np.mean(losses))
    w = np.asarray(w, dtype=np.float64)
    return float((w * losses).sum() / w.sum()) if w.sum() > 0 else float("nan")


def roc_auc(y, p, w=None) -> float:
    """Exact ROC AUC: the chance that a positive outscores a negative, ties counted half
    (Mann-Whitney), each pair weighted by the product of its examples' weights ``w``.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], w=[1, 1, 3, 1])  # the misranked one weighs 3
    0.625
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    wpos, wneg = float(w[y == 1].sum()), float(w[y != 1].sum())
    if wpos <= 0 or wneg <= 0:
        return float("nan")
    values, group = np.unique(p, return_inverse=True)  # one group per distinct score, ascending
    pos = np.bincount(group, weights=np.where(y == 1, w, 0.0), minlength=len(values))
    neg = np.bincount(group, weights=np.where(y == 1, 0.0, w), minlength=len(values))
    neg_below = np.cumsum(neg) - neg
    return float((pos * (neg_below + 0.5 * neg)).sum() / (wpos * wneg))


def accuracy(y, p, threshold: float = 0.5) -> float:
    y = np.asarray(y)
    return float(np.mean((np.asarray(p) >= threshold) == (y == 1))) if len(y) else float("nan")
