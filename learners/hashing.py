"""Feature hashing: feature dicts to sparse rows of a fixed-size weight space (CSR arrays).

A categorical feature ``k: v`` becomes the token ``k=v`` with value 1; a float ``k: v`` becomes
the token ``k`` with value ``v``. Crosses ``(a, b)`` add the token ``a=va^b=vb`` when both are
present. Tokens are hashed with CRC-32 (stable across processes, unlike ``hash``) into
``2**bits`` buckets; bucket 0 is reserved for the bias.

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

    def transform(self, X: Sequence[dict]) -> Rows:
        indptr = np.empty(len(X) + 1, dtype=np.int64)
        indptr[0] = 0
        idx: list[int] = []
        val: list[float] = []
        crc, mask = zlib.crc32, self._mask
        for i, x in enumerate(X):
            idx.append(0)
            val.append(1.0)
            for tok, v in self.tokens(x):
                idx.append((crc(tok.encode()) & mask) or 1)
                val.append(v)
            indptr[i + 1] = len(idx)
        return Rows(indptr, np.asarray(idx, dtype=np.int64), np.asarray(val, dtype=np.float64))
