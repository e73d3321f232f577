"""Metrics for click prediction: log loss, ROC AUC (exact, ties averaged), calibration."""

from __future__ import annotations

import numpy as np

EPS = 1e-15


def log_loss(y, p) -> float:
    """Mean binary cross-entropy.

    >>> round(log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


def roc_auc(y, p) -> float:
    """Exact ROC AUC by the rank-sum (Mann-Whitney) formula, ties given the average rank.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    ranks = np.empty(len(p), dtype=np.float64)
    # average ranks over ties
    _, start, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def accuracy(y, p, threshold: float = 0.5) -> float:
    y = np.asarray(y)
    return float(np.mean((np.asarray(p) >= threshold) == (y == 1))) if len(y) else float("nan")
