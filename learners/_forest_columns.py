"""The forest's columns: feature names to columns and values to bins (see
:mod:`learners.forest`), for learning and for a request's candidates."""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence

import numpy as np

from .base import Features
from .columns import ItemColumns

MISSING = 0
_NUMBERS = {int, float}  # the classes of a numeric column that need no conversion
# the classes whose values are their own memo keys: a bool or a float equals an int as a dict
# key (True == 1 == 1.0), so those are memoised by (class, value), never in place of the int
_PLAIN = {str, int, type(None)}


class Columns:
    """Feature names to columns, and values to bins (1..bins; 0 = missing)."""

    def __init__(self, bins: int, max_features: int):
        self.bins, self.max_features = bins, max_features
        self.names: list[str] = []
        self.numeric: list[bool] = []
        self.edges: list[np.ndarray] = []
        self._memo: dict = {None: MISSING}  # value -> bin, values of _PLAIN classes only
        self._typed: dict = {}  # (class, value) -> bin, for the others

    def fit(self, X: Sequence[Features]) -> None:
        """Fix each column's kind and bin edges from the warm-up rows."""
        seen: dict[str, list] = {}
        for x in X:
            for k, v in x.items():
                if v is not None:
                    seen.setdefault(k, []).append(v)
        for k, vals in seen.items():
            self._add(k, vals)

    def _add(self, name: str, vals: list) -> None:
        if name in self._index or len(self.names) >= self.max_features:
            return
        floats = [float(v) for v in vals if isinstance(v, int | float)
                  and not isinstance(v, bool)]
        numeric = (len(floats) == len(vals) and bool(vals)
                   and (any(isinstance(v, float) for v in vals)
                        or len(set(floats)) > self.bins))
        edges = np.zeros(0)
        if numeric:
            qs = np.quantile(np.asarray(floats), np.linspace(0, 1, self.bins + 1)[1:-1])
            edges = np.unique(qs)
        self.names.append(name)
        self.numeric.append(numeric)
        self.edges.append(edges)
        self._index_cache = None

    @property
    def _index(self) -> dict[str, int]:
        if getattr(self, "_index_cache", None) is None:
            self._index_cache = {n: i for i, n in enumerate(self.names)}
        return self._index_cache

    def transform(self, X: Sequence[Features], grow: bool = True) -> np.ndarray:
        """(n, columns) bins. Learning (``grow``), a column not seen at warm-up joins
        (categorical, or numeric with edges from this batch) while there is room; predicting,
        it is ignored (a request never changes the model)."""
        if grow:
            for x in X:
                for k, v in x.items():
                    if v is not None and k not in self._index:
                        self._add(k, [x2[k] for x2 in X if x2.get(k) is not None])
        out = np.zeros((len(X), len(self.names)), dtype=np.int16)
        for j, name in enumerate(self.names):
            out[:, j] = self._column(j, [x.get(name) for x in X])
        return out

    def transform_request(self, shared: Features, items: Sequence[Features]) -> np.ndarray:
        """The bins of ``{**shared, **item}`` for each item, the shared part binned once."""
        out = np.zeros((len(self.names), len(items)), dtype=np.int16)  # by column, then .T
        by_col = isinstance(items, ItemColumns) and not shared.keys() & items.columns
        in_items = items.columns if by_col else set().union(*items)
        for j, name in enumerate(self.names):
            if name in in_items:
                if by_col:
                    out[j] = self._column(j, items.columns[name])
                    continue
                sv = shared.get(name)
                out[j] = self._column(j, [it.get(name, sv) for it in items])
            elif shared.get(name) is not None:
                out[j] = self._one(j, shared[name])
        return np.ascontiguousarray(out.T)

    def _one(self, j: int, v) -> int:
        """:meth:`_column` of one value, without arrays (a request's shared features)."""
        if not self.numeric[j]:
            b = self._memo.get(v) if v.__class__ in _PLAIN else None
            return self._bin(v) if b is None else b
        if not isinstance(v, int | float) or isinstance(v, bool) or v != v:
            return MISSING
        return bisect.bisect_right(self.edges[j], float(v)) + 1

    def _column(self, j: int, col: list) -> np.ndarray | list:
        if self.numeric[j]:
            v = np.array(col if set(map(type, col)) <= _NUMBERS else [
                c if isinstance(c, int | float) and not isinstance(c, bool) else np.nan
                for c in col], dtype=np.float64)
            b = np.searchsorted(self.edges[j], v, side="right") + 1
            b[np.isnan(v)] = MISSING
            return b
        if not set(map(type, col)) <= _PLAIN:  # bools, floats: by class and value
            return [self._bin(c) for c in col]
        bins = list(map(self._memo.get, col))  # None is in the memo: MISSING
        if None in bins:  # values not binned yet
            bins = [self._bin(c) if b is None else b for b, c in zip(bins, col, strict=True)]
        return bins

    def _bin(self, v) -> int:
        """``v``'s bin: a hash of its class and value, the same in every process whatever
        values came before it."""
        plain = v.__class__ in _PLAIN
        memo, key = (self._memo, v) if plain else (self._typed, (v.__class__, v))
        b = memo.get(key)
        if b is None:
            if len(memo) > 100_000:
                memo.clear()
                self._memo[None] = MISSING
            b = memo[key] = 1 + zlib.crc32(f"{type(v).__name__}:{v}".encode()) % self.bins
        return b

    def to_state(self) -> dict:
        return {"bins": self.bins, "max_features": self.max_features, "names": self.names,
                "numeric": self.numeric, "edges": self.edges}

    @classmethod
    def from_state(cls, s: dict) -> Columns:
        c = cls(s["bins"], s["max_features"])
        c.names, c.numeric = list(s["names"]), list(s["numeric"])
        c.edges = [np.asarray(e, dtype=np.float64) for e in s["edges"]]
        return c
