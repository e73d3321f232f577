"""Frozen, compiled scorers for the river linear models, for serving.

A serving replica never trains: it can turn a river model's weight dict (token -> weight) into
a table keyed by the token's CRC-32, the hash :class:`learners.hashing.FeatureHasher` already
computes for every request (``prepare_request``), and score all candidates in one compiled
call, with the shared user/context part summed once. Exact as long as no two tokens share a
CRC-32: two known tokens that do make the model uncompilable (the caller keeps river's path);
an unseen token with the same CRC-32 as a known one (odds about one in a million per unseen
token for a model of a few thousand tokens) would borrow that token's weight.

>>> from learners.river_models import RiverLogisticRegression
>>> from learners.hashing import FeatureHasher
>>> m = RiverLogisticRegression(lr=0.5)
>>> for _ in range(20):
...     m.learn_one({"u": "1", "a": "x"}, 1)
...     m.learn_one({"u": "1", "a": "y"}, 0)
>>> c = compile_linear(m)
>>> prep = FeatureHasher().prepare_request({"u": "1"}, [{"a": "x"}, {"a": "y"}, {"a": "z"}])
>>> p = c.predict(prep)
>>> bool(p[0] > 0.5 > p[1]), bool(abs(p[2] - m.predict_proba_one({"u": "1", "a": "z"})) < 1e-12)
(True, True)
"""

from __future__ import annotations

import numpy as np
from numba import njit
from river.linear_model.ad_predictor import _BIAS_KEY

from ._frozen_tables import table_row
from .hashing import PreparedRequest, token_hash


class TokenTable:
    """Open addressing over CRC-32 token hashes: ``slot(h)`` is the row of ``h``, or -1."""

    def __init__(self, hashes: list[int]):
        size = 1 << max(4, (4 * len(hashes) - 1).bit_length())
        self.keys = np.full(size, -1, dtype=np.int64)
        self.rows = np.zeros(size, dtype=np.int64)
        for row, h in enumerate(hashes):
            s = h & (size - 1)
            while self.keys[s] != -1:
                if self.keys[s] == h:
                    raise ValueError("two tokens share a CRC-32")
                s = (s + 1) & (size - 1)
            self.keys[s], self.rows[s] = h, row


@njit(cache=True)
def _sums(s_hash, s_val, H, V, P, keys, rows, a, b, a_default, b_default, active_only):
    """Per item: sum of ``a[row]*v`` (and of ``b[row]``) over its tokens and the shared ones;
    an unknown token adds ``a_default*v`` (``b_default``). ``active_only``: skip zero values."""
    n, k = H.shape
    sa = np.zeros(n)
    sb = np.zeros(n)
    base_a, base_b = 0.0, 0.0
    for j in range(s_hash.shape[0]):
        v = s_val[j]
        if active_only and v == 0.0:
            continue
        r = table_row(keys, rows, s_hash[j])
        base_a += (a[r] if r >= 0 else a_default) * v
        base_b += b[r] if r >= 0 else b_default
    for i in range(n):
        sa[i], sb[i] = base_a, base_b
        for j in range(k):
            if not P[i, j]:
                continue
            v = V[i, j]
            if active_only and v == 0.0:
                continue
            r = table_row(keys, rows, H[i, j])
            sa[i] += (a[r] if r >= 0 else a_default) * v
            sb[i] += b[r] if r >= 0 else b_default
    return sa, sb


class CompiledLinear:
    """A frozen river ``LogisticRegression``: sigmoid(intercept + sum of w * value)."""

    def __init__(self, weights: dict, intercept: float):
        self.table = TokenTable([token_hash(t) for t in weights])
        self.w = np.asarray(list(weights.values()), dtype=np.float64)
        self.intercept = intercept

    def predict(self, pr: PreparedRequest) -> np.ndarray:
        z, _ = _sums(pr.s_hash, pr.s_val, pr.H, pr.V, pr.P, self.table.keys, self.table.rows,
                     self.w, self.w, 0.0, 0.0, False)
        z += self.intercept
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
        p[z < -30] = 0.0  # river's sigmoid
        p[z > 30] = 1.0
        return p


class CompiledAdPredictor:
    """A frozen river ``AdPredictor``: Phi(total mean / sqrt(total variance))."""

    def __init__(self, means: dict, variances: dict, bias_mean: float, bias_variance: float):
        tokens = list(dict.fromkeys([*means, *variances]))
        self.table = TokenTable([token_hash(t) for t in tokens])
        self.means = np.asarray([means.get(t, 0.0) for t in tokens], dtype=np.float64)
        self.variances = np.asarray([variances.get(t, 1.0) for t in tokens], dtype=np.float64)
        self.bias_mean, self.bias_variance = bias_mean, bias_variance

    def predict(self, pr: PreparedRequest) -> np.ndarray:
        from scipy.special import ndtr

        # river counts a feature when its value is truthy, whatever the value
        s_on, on = (pr.s_val != 0).astype(np.float64), (pr.V != 0).astype(np.float64)
        mean, var = _sums(pr.s_hash, s_on, pr.H, on, pr.P, self.table.keys, self.table.rows,
                          self.means, self.variances, 0.0, 1.0, True)
        mean += self.bias_mean
        var += self.bias_variance
        return np.clip(ndtr(mean / np.sqrt(var)), 1e-12, 1.0 - 1e-12)


def compile_linear(model) -> CompiledLinear | CompiledAdPredictor | None:
    """The compiled scorer of a river linear model, or None when it has none (another kind of
    model, features not one-hot encoded, numeric features standardised, no bias yet, or two
    tokens share a CRC-32)."""
    from .river_models import RiverAdPredictor, RiverLearner, RiverLogisticRegression

    if not isinstance(model, RiverLearner) or not model.one_hot:
        return None
    try:
        if isinstance(model, RiverLogisticRegression):
            if model.scaler is not None and len(model.scaler):
                return None  # numbers scaled (and clipped) per feature: river's path is exact
            r = model.model
            return CompiledLinear(dict(r.weights), float(r.intercept))
        if isinstance(model, RiverAdPredictor):
            r = model.model
            if _BIAS_KEY not in r.means:
                return None
            means = {k: v for k, v in r.means.items() if k != _BIAS_KEY}
            variances = {k: v for k, v in r.variances.items() if k != _BIAS_KEY}
            return CompiledAdPredictor(means, variances, r.means[_BIAS_KEY],
                                       r.variances[_BIAS_KEY] + r.beta ** 2)
    except ValueError:  # a CRC-32 collision between two known tokens
        return None
    return None

