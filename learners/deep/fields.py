"""Field hashing for the deep models: every example becomes F bucket ids, one per field.

Fields are fixed (a model's input width cannot change); ``fields=None`` takes the sorted feature
names of the first batch. A missing field maps to that field's own "missing" bucket.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


class FieldHasher:
    def __init__(self, buckets: int, fields: Sequence[str] | None = None):
        self.buckets = buckets
        self.fields = tuple(fields) if fields else None

    def fit(self, X: Sequence[dict]) -> None:
        if self.fields is None:
            keys = sorted({k for x in X[:1000] for k in x})
            self.fields = tuple(keys)

    def transform(self, X: Sequence[dict]) -> np.ndarray:
        self.fit(X)
        crc, b = zlib.crc32, self.buckets
        out = np.empty((len(X), len(self.fields)), dtype=np.int64)
        for i, x in enumerate(X):
            for j, f in enumerate(self.fields):
                v = x.get(f)
                if isinstance(v, float):
                    v = round(v, 2)
                out[i, j] = crc(f"{f}={v}".encode()) % b
        return out
