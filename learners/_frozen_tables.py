"""Compact serving tables of the hashed linear models (FTRL-Proximal, the factorization
machine), made once per model version by a replica (:class:`learners.base.Freezable`).

A hashed model keeps its state in arrays of every bucket of its space: FTRL 2**22 buckets of
``z`` and ``n`` (64 MB), the FM 2**20 of ``z``, ``n`` and 16 factors (150 MB). A request's
2,200 entries then read from three to five tables at random places, and in a replica, whose
caches the HTTP stack, the logging and the other models clear between requests, most of those
reads go to memory. Yet the model touched only the buckets of the tokens it learned (20,763 and
1,991 after 20,000 MovieLens examples): frozen, it holds those alone, in one open-addressing
table of bucket -> row (``keys``; linear probing, at most half full) beside the rows' linear
weights (worked out once from ``z`` and ``n``) and, for the FM, their factors. A bucket not in
the table has weight 0 (FTRL's weight of z = 0) and its initial factors, computed where needed
(:func:`learners._kernels.factor_init`), as the learning kernels would draw them.

Each kernel makes its sums in the learning kernel's order (the rows' common start once, then
entry by entry; each factor's sum over the entries in order), so a frozen model's predictions
are its own to the bit. The tables are made without holding the GIL (``nogil``): a replica
makes them in the thread that follows model updates while its loop goes on answering.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernels import _fm_pair, _ftrl_weight, _sigmoid, factor_init, shared_prefix


@njit(cache=True, nogil=True)
def build_keys(buckets):
    """The open-addressing table of ``buckets`` (distinct, >= 0): ``keys[s]`` a bucket or -1,
    ``rows[s]`` its index in ``buckets``."""
    size = 16
    while size < 2 * len(buckets):
        size *= 2
    keys = np.full(size, -1, dtype=np.int64)
    rows = np.zeros(size, dtype=np.int64)
    mask = size - 1
    for r in range(len(buckets)):
        s = buckets[r] & mask  # (a bucket is a hash already)
        while keys[s] != -1:
            s = (s + 1) & mask
        keys[s], rows[s] = buckets[r], r
    return keys, rows


@njit(cache=True)
def table_row(keys, rows, h):
    """The row of hash ``h`` in an open-addressing table (``keys``: a power of two of hashes
    or -1, ``rows``), or -1: :func:`build_keys`' tables and
    :class:`learners.compiled.TokenTable`'s."""
    mask = keys.shape[0] - 1
    s = h & mask
    while keys[s] != -1:
        if keys[s] == h:
            return rows[s]
        s = (s + 1) & mask
    return -1


@njit(cache=True, nogil=True)
def linear_weights(z, n, alpha, beta, l1, l2):
    """FTRL's weight of each bucket of the tables (``z``, ``n``: their rows)."""
    w = np.empty(len(z))
    for r in range(len(z)):
        w[r] = _ftrl_weight(z[r], n[r], alpha, beta, l1, l2)
    return w


@njit(cache=True)
def ftrl_predict_frozen(indptr, idx, val, keys, rows, w, out):
    """:func:`learners._kernels.ftrl_predict` over the frozen table."""
    p = shared_prefix(indptr, idx, val)
    base = 0.0
    for j in range(indptr[0], indptr[0] + p):
        r = table_row(keys, rows, idx[j])
        base += (w[r] if r >= 0 else 0.0) * val[j]
    for i in range(len(indptr) - 1):
        wx = base
        for j in range(indptr[i] + p, indptr[i + 1]):
            r = table_row(keys, rows, idx[j])
            wx += (w[r] if r >= 0 else 0.0) * val[j]
        out[i] = _sigmoid(wx)


@njit(cache=True)
def _factor_sums(s, e, idx, val, keys, rows, V, seed, std, S, Q):
    """``_fm_factor_sums`` over the frozen table: a bucket not in it has its initial factors."""
    kf = S.shape[0]
    for j in range(s, e):
        k = idx[j]
        if k == 0:
            continue
        r = table_row(keys, rows, k)
        for f in range(kf):
            t = (V[r, f] if r >= 0 else factor_init(seed, k, f, std)) * val[j]
            S[f] += t
            Q[f] += t * t


@njit(cache=True)
def fm_predict_frozen(indptr, idx, val, keys, rows, w, V, seed, std, out):
    """:func:`learners._kernels.fm_predict` over the frozen table."""
    if len(indptr) < 2:
        return
    kf = V.shape[1]
    p = shared_prefix(indptr, idx, val)
    S0, Q0 = np.zeros(kf), np.zeros(kf)
    S, Q = np.empty(kf), np.empty(kf)
    s0 = indptr[0]
    lin0 = 0.0
    for j in range(s0, s0 + p):
        r = table_row(keys, rows, idx[j])
        lin0 += (w[r] if r >= 0 else 0.0) * val[j]
    _factor_sums(s0, s0 + p, idx, val, keys, rows, V, seed, std, S0, Q0)
    for i in range(len(indptr) - 1):
        s, e = indptr[i] + p, indptr[i + 1]
        lin = lin0
        for j in range(s, e):
            r = table_row(keys, rows, idx[j])
            lin += (w[r] if r >= 0 else 0.0) * val[j]
        S[:] = S0
        Q[:] = Q0
        _factor_sums(s, e, idx, val, keys, rows, V, seed, std, S, Q)
        out[i] = _sigmoid(lin + _fm_pair(S, Q))


@njit(cache=True, nogil=True)
def factors_of(buckets, V, ready, seed, std):
    """The factors of each of ``buckets`` (``V``, ``ready``: their rows): learned or drawn
    (``ready``), else the initial ones."""
    out = np.empty((len(buckets), V.shape[1]))
    for r in range(len(buckets)):
        for f in range(V.shape[1]):
            out[r, f] = V[r, f] if ready[r] else factor_init(seed, buckets[r], f, std)
    return out


class FrozenLinear:
    """A hashed model's weights on the buckets it touched (``buckets``), for serving; with
    ``V`` (factors of the buckets whose factors are drawn or learned), a factorization
    machine's."""

    def __init__(self, buckets: np.ndarray, w: np.ndarray, V: np.ndarray | None = None,
                 seed: int = 0, std: float = 0.0):
        self.keys, self.rows = build_keys(np.ascontiguousarray(buckets, dtype=np.int64))
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.V, self.seed, self.std = V, seed, std

    def predict(self, indptr, idx, val) -> np.ndarray:
        out = np.empty(len(indptr) - 1, dtype=np.float64)
        if self.V is None:
            ftrl_predict_frozen(indptr, idx, val, self.keys, self.rows, self.w, out)
        else:
            fm_predict_frozen(indptr, idx, val, self.keys, self.rows, self.w, self.V,
                              self.seed, self.std, out)
        return out
