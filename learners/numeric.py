"""Numeric values in hashed rows, standardised on the stream: the hashed learners' scaler.

A hashed row carries a categorical token with the value 1 and a numeric feature with its raw
value (:mod:`learners.hashing`). Raw magnitudes hurt a linear model over tokens: a price in
cents swamps the 0/1 tokens beside it, a feature centred far from 0 acts as a second bias,
and FTRL's per-coordinate rate (McMahan et al. 2013) adapts to the gradient's size, not the
value's. So each bucket that has held a value other than 1 (a numeric feature: a token is
always 1) keeps Welford's running count, mean and squared deviations (Welford, "Note on a
method for calculating corrected sums of squares and products", Technometrics 1962), and its
value becomes the z-score by those statistics, clipped to ``±clip`` so one extreme value cannot
swamp the model. It is river's ``StandardScaler`` moved inside the learner; VW's
``--normalized`` (Ross, Mineiro & Langford, "Normalized Online Learning", UAI 2013) rescales
the update instead.

In progressive learning a row is scaled by the statistics of the rows learned before it, then
counted (predict before learn); prediction scales by the statistics as they are. The
statistics are part of the model's state, so a serving replica scales exactly as the trainer.

>>> import numpy as np
>>> from learners.hashing import Rows
>>> s = BucketScaler()
>>> rows = Rows(np.array([0, 2, 4, 6]), np.array([0, 7, 0, 7, 0, 7]),
...             np.array([1.0, 10.0, 1.0, 20.0, 1.0, 30.0]))
>>> s.progressive(rows, np.ones(3, dtype=bool)).values.tolist()  # 0 until two are known
[1.0, 0.0, 1.0, 0.0, 1.0, 3.0]
>>> s.transform(Rows(np.array([0, 2]), np.array([0, 7]), np.array([1.0, 1e15]))).values.tolist()
[1.0, 5.0]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._kernels import _mix
from .hashing import Rows
from .state import persistent

MAX_NUMERIC = 1 << 16  # numeric buckets tracked; past that a new one keeps its raw values
MAX_BINNED = 1024  # numeric buckets given quantile bins (each keeps ``sample`` first values)


@njit(cache=True)
def _z(v, s, stats, clip):
    """``v`` standardised by slot ``s``'s statistics (0 until they have two values), clipped."""
    n = stats[s, 0]
    z = 0.0
    if n >= 2.0:
        sd = math.sqrt(stats[s, 2] / n)
        if sd > 0.0:
            z = (v - stats[s, 1]) / sd
    return min(clip, max(-clip, z))


@njit(cache=True)
def _bin(v, s, edges):
    """The bin of ``v`` among slot ``s``'s fixed edges."""
    b = 0
    while b < edges.shape[1] and v >= edges[s, b]:
        b += 1
    return b


@njit(cache=True)
def _scale(indptr, slots, values, stats, learn, update, clip, out, sample, edges, ready, tok):
    """Scale each entry by its slot's statistics (before the row is counted), note its bin
    (``tok``: -1 for none), then count the learned rows; a binned slot keeps its first values
    in ``sample`` and fixes its ``edges`` (quantiles) when the sample is full."""
    Q, B1 = sample.shape[1], edges.shape[1]
    for i in range(len(indptr) - 1):
        lo, hi = indptr[i], indptr[i + 1]
        for e in range(lo, hi):
            s = slots[e]
            tok[e] = -1
            if s < 0:
                out[e] = values[e]
                continue
            out[e] = _z(values[e], s, stats, clip)
            if s < len(ready) and ready[s]:
                tok[e] = _bin(values[e], s, edges)
        if update and learn[i]:
            for e in range(lo, hi):
                s = slots[e]
                if s >= 0:
                    v = values[e]
                    if s < len(ready) and not ready[s]:
                        k = int(stats[s, 0])
                        if k < Q:
                            sample[s, k] = v
                        if k + 1 >= Q:
                            srt = np.sort(sample[s])
                            for j in range(B1):
                                edges[s, j] = srt[(j + 1) * Q // (B1 + 1)]
                            ready[s] = True
                    stats[s, 0] += 1.0
                    d = v - stats[s, 1]
                    stats[s, 1] += d / stats[s, 0]
                    stats[s, 2] += d * (v - stats[s, 1])


@njit(cache=True)
def _with_bins(indptr, idx, vals, tok, size):
    """The rows with, after each binned entry, its bin's token (value 1): the bucket of
    (entry's bucket, bin), never the bias bucket 0."""
    n = len(indptr) - 1
    extra = 0
    for e in range(len(tok)):
        if tok[e] >= 0:
            extra += 1
    o_ptr = np.empty(n + 1, dtype=np.int64)
    o_idx = np.empty(len(idx) + extra, dtype=np.int64)
    o_val = np.empty(len(idx) + extra, dtype=np.float64)
    mask = np.uint64(size - 1)
    j = 0
    o_ptr[0] = 0
    for i in range(n):
        for e in range(indptr[i], indptr[i + 1]):
            o_idx[j], o_val[j] = idx[e], vals[e]
            j += 1
            if tok[e] >= 0:
                h = _mix(np.uint64(idx[e]) * np.uint64(64) + np.uint64(tok[e] + 1)) & mask
                o_idx[j], o_val[j] = max(int(h), 1), 1.0
                j += 1
        o_ptr[i + 1] = j
    return o_ptr, o_idx, o_val


@njit(cache=True)
def _transform(indptr, idx, vals, buckets, slot, stats, clip, edges, ready, size):
    """Serving's one pass: each entry's slot (as :meth:`BucketScaler._slots` finds it), its
    value scaled and its bin noted as :func:`_scale` does without learning, then the bin
    tokens laid in by :func:`_with_bins`."""
    nb, m = len(buckets), len(idx)
    out = np.empty(m, dtype=np.float64)
    tok = np.full(m, -1, dtype=np.int64)
    binned = 0
    for e in range(m):
        k, v = idx[e], vals[e]
        pos = min(np.searchsorted(buckets, k), nb - 1)  # as _slots finds it
        s = slot[pos] if buckets[pos] == k else -1
        if s < 0:
            out[e] = v
            continue
        out[e] = _z(v, s, stats, clip)
        if s < len(ready) and ready[s]:
            tok[e] = _bin(v, s, edges)
            binned += 1
    if size and binned:
        return _with_bins(indptr, idx, out, tok, size)
    return indptr, idx, out


@persistent
class BucketScaler:
    """Per-bucket running standardisation of the numeric values of hashed rows, and (with
    ``size``, the hashed space) quantile bins as tokens.

    A numeric value also gets the token of its quantile bin, once its bucket has seen
    ``sample_size`` values (``bins`` bins, their edges the sample's quantiles, then fixed): a linear
    model learns a curve per feature (a weight per bin), a factorisation machine a grid per
    pair of features (the interaction of their bins), where the standardised value alone gives
    a line. The first :data:`MAX_BINNED` numeric buckets are binned."""

    def __init__(self, clip: float = 5.0, bins: int = 16, size: int = 0, sample_size: int = 100):
        self.clip, self.bins, self.size, self.sample_size = clip, bins, size, sample_size
        self.buckets = np.zeros(0, dtype=np.int64)  # numeric buckets, sorted
        self.slot = np.zeros(0, dtype=np.int64)  # their rows in ``stats``
        self.stats = np.zeros((0, 3), dtype=np.float64)  # n, mean, m2
        self.sample = np.zeros((0, sample_size), dtype=np.float64)  # first values, binned slots
        self.edges = np.zeros((0, max(bins - 1, 0)), dtype=np.float64)
        self.ready = np.zeros(0, dtype=np.bool_)  # edges fixed

    # (a state saved before bins lacks these: it is not binned)
    bins = size = 0
    sample = np.zeros((0, 1))
    edges = np.zeros((0, 0))
    ready = np.zeros(0, dtype=np.bool_)

    def __len__(self) -> int:
        return len(self.buckets)

    def _slots(self, rows: Rows, grow: bool) -> np.ndarray | None:
        """Each entry's row in ``stats`` (-1: not numeric); None when no entry is."""
        idx, new = rows.indices, rows.values != 1.0
        if grow and new.any():
            fresh = np.setdiff1d(idx[new], self.buckets)
            fresh = fresh[:max(MAX_NUMERIC - len(self.buckets), 0)]
            if len(fresh):
                k = len(self.stats)
                self.stats = np.concatenate([self.stats, np.zeros((len(fresh), 3))])
                buckets = np.concatenate([self.buckets, fresh])
                slot = np.concatenate([self.slot, np.arange(k, k + len(fresh))])
                order = np.argsort(buckets, kind="stable")
                self.buckets, self.slot = buckets[order], slot[order]
                self._grow_bins()
        if not len(self.buckets):
            return None
        pos = np.minimum(np.searchsorted(self.buckets, idx), len(self.buckets) - 1)
        hit = self.buckets[pos] == idx
        if not hit.any():
            return None
        return np.where(hit, self.slot[pos], -1)

    def _grow_bins(self) -> None:
        """Room in ``sample``, ``edges`` and ``ready`` for the new slots, up to MAX_BINNED."""
        if not self.size or self.bins < 2:
            return
        k = min(len(self.stats), MAX_BINNED) - len(self.ready)
        if k > 0:
            self.sample = np.concatenate([self.sample, np.zeros((k, self.sample.shape[1]))])
            self.edges = np.concatenate([self.edges, np.zeros((k, self.edges.shape[1]))])
            self.ready = np.concatenate([self.ready, np.zeros(k, dtype=np.bool_)])

    def _apply(self, rows: Rows, learn: np.ndarray | None) -> Rows:
        slots = self._slots(rows, grow=learn is not None)
        if slots is None:
            return rows
        out = np.empty_like(rows.values)
        tok = np.empty(len(out), dtype=np.int64)
        update = learn is not None
        mask = learn if update else np.zeros(len(rows), dtype=np.bool_)
        _scale(rows.indptr, slots, rows.values, self.stats, mask, update, self.clip, out,
               self.sample, self.edges, self.ready, tok)
        if self.size and (tok >= 0).any():
            return Rows(*_with_bins(rows.indptr, rows.indices, out, tok, self.size))
        return Rows(rows.indptr, rows.indices, out)

    def progressive(self, rows: Rows, learn: np.ndarray) -> Rows:
        """The rows scaled one by one, each by the statistics of the learned rows before it;
        the rows with ``learn`` set are then counted."""
        return self._apply(rows, np.asarray(learn, dtype=np.bool_))

    def transform(self, rows: Rows) -> Rows:
        """The rows scaled by the statistics as they are (serving, prediction): what
        :meth:`_apply` gives without learning, in one compiled pass."""
        if not len(self.buckets):
            return rows
        return Rows(*_transform(rows.indptr, rows.indices, rows.values, self.buckets,
                                self.slot, self.stats, self.clip, self.edges, self.ready,
                                self.size))
