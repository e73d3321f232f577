"""Feature hashing: feature dicts to sparse rows of a fixed-size weight space (CSR arrays).

A categorical feature ``k: v`` becomes the token ``k=v`` with value 1; a float ``k: v`` becomes
the token ``k`` with value ``v``. Crosses ``(a, b)`` add the token ``a=va^b=vb`` when both are
present. Tokens are hashed with CRC-32 (stable across processes, unlike ``hash``) into
``2**bits`` buckets; bucket 0 is reserved for the bias. A token's hash is memoised (ids, genres
and user fields repeat endlessly in a stream), and a cross's hash mixes its two tokens' hashes
instead of hashing a new string.

>>> h = FeatureHasher(bits=10, crosses=(("gender", "genre"),))
>>> rows = h.transform([{"gender": "F", "genre": "Drama", "age": 0.5}, {"genre": None}])
>>> rows.indptr.tolist()
[0, 5, 6]
>>> int(rows.indices[0]), float(rows.values[0])
(0, 1.0)
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MEMO_MAX = 2_000_000  # memoised token hashes before the memo starts over


@dataclass
class Rows:
    """A batch of hashed examples in CSR form."""

    indptr: np.ndarray  # int64, n + 1
    indices: np.ndarray  # int64, nnz
    values: np.ndarray  # float64, nnz

    def __len__(self) -> int:
        return len(self.indptr) - 1


class FeatureHasher:
    def __init__(self, bits: int = 20, crosses: Sequence[tuple[str, str]] = ()):
        if not 4 <= bits <= 28:
            raise ValueError(f"bits must be in 4..28, got {bits}")
        self.bits = bits
        self.crosses = tuple(tuple(c) for c in crosses)
        self.size = 1 << bits
        self._mask = self.size - 1
        self._memo: dict = {}

    @property
    def key(self) -> tuple:
        """Hashers with equal keys produce equal rows: a batch is hashed once per key."""
        return (self.bits, self.crosses)

    def tokens(self, x: dict) -> list[tuple[str, float]]:
        out = []
        for k, v in x.items():
            if v is None:
                continue
            if isinstance(v, float):
                out.append((k, v))
            else:
                out.append((f"{k}={v}", 1.0))
        for a, b in self.crosses:
            va, vb = x.get(a), x.get(b)
            if va is not None and vb is not None:
                out.append((f"{a}={va}^{b}={vb}", 1.0))
        return out

    def _hash(self, k: str, v) -> int:
        key = (k, v)
        h = self._memo.get(key)
        if h is None:
            if len(self._memo) > MEMO_MAX:
                self._memo.clear()
            tok = k if v is None else f"{k}={v}"
            h = self._memo[key] = zlib.crc32(tok.encode())
        return h

    def transform(self, X: Sequence[dict]) -> Rows:
        indptr = np.empty(len(X) + 1, dtype=np.int64)
        indptr[0] = 0
        idx: list[int] = []
        val: list[float] = []
        mask, crosses, memo_hash = self._mask, self.crosses, self._hash
        for i, x in enumerate(X):
            idx.append(0)
            val.append(1.0)
            named = {}
            for k, v in x.items():
                if v is None:
                    continue
                if isinstance(v, float):
                    h = memo_hash(k, None)
                    val.append(v)
                else:
                    h = memo_hash(k, v)
                    val.append(1.0)
                named[k] = h
                idx.append((h & mask) or 1)
            for a, b in crosses:
                ha, hb = named.get(a), named.get(b)
                if ha is not None and hb is not None and (x[a].__class__ is not float
                                                          and x[b].__class__ is not float):
                    idx.append(((((ha * 0x9E3779B1) & 0xFFFFFFFF) ^ hb) & mask) or 1)
                    val.append(1.0)
            indptr[i + 1] = len(idx)
        return Rows(indptr, np.asarray(idx, dtype=np.int64), np.asarray(val, dtype=np.float64))

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._memo = {}
