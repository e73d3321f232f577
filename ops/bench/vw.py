"""Vowpal Wabbit (pyvw) on exactly our features: the same tokens our hasher makes, crosses
included, one namespace; predict, then learn, per example."""

from __future__ import annotations

import time

import numpy as np

from learners.hashing import FeatureHasher


def _clean(tok: str) -> str:
    return tok.replace(" ", "_").replace(":", ";").replace("|", "/")


def vw_lines(X: list[dict], y: list[int], hasher: FeatureHasher) -> list[str]:
    lines = []
    for x, yi in zip(X, y, strict=True):
        feats = " ".join(_clean(t) if v == 1.0 else f"{_clean(t)}:{v}"
                         for t, v in hasher.tokens(x))
        lines.append(f"{1 if yi else -1} |f {feats}")
    return lines


def run_vw(X: list[dict], y: list[int], hasher: FeatureHasher, ftrl: bool) -> tuple[np.ndarray,
                                                                                     float]:
    """Progressive predictions and examples/s (the lines are built before the clock starts)."""
    from vowpalwabbit import pyvw

    args = "--loss_function logistic --link logistic -b 22 --quiet"
    vw = pyvw.Workspace(args + (" --ftrl" if ftrl else ""))
    lines = vw_lines(X, y, hasher)
    out = np.empty(len(lines))
    t = time.perf_counter()
    for i, line in enumerate(lines):
        ex = vw.example(line)
        out[i] = vw.predict(ex)
        vw.learn(ex)
        vw.finish_example(ex)
    secs = time.perf_counter() - t
    vw.finish()
    return out, len(lines) / secs
