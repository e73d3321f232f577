"""A tenant's columns: which feature is a number and which a category, so that a value of the
wrong type for its column is refused (dead-lettered with the reason) instead of learned as
something it is not.

A column's kind is inferred once ``infer_rows`` of its values (not None) were seen: ``number``
when most of them are ints or floats, ``category`` otherwise; until then it takes every value,
and the batch that fixes its kind is checked against it. The user may fix any column's kind in
the tenant's model graph (``"schema": {"zip": "category", "note": "any"}``); ``any`` takes
every value. A number column takes ints and floats; a category column takes strings, booleans
and ints (a code), and a float only when it is whole (JSON writes ``7`` as ``7.0`` at times).
A missing value (None) fits every column. At most :data:`MAX_COLUMNS` columns are tracked; a
later one takes every value.

>>> s = ColumnSchema(infer_rows=2)
>>> s.check([{"age": 30, "city": "Oslo"}, {"age": 41.5, "city": "Rome", "ad": None}])
[]
>>> s.kinds
{'age': 'number', 'city': 'category'}
>>> s.check([{"age": "forty", "city": "Paris"}, {"age": 3, "city": 7}, {"city": 2.5}])
[(0, 'features.age', "is 'forty' (a str); the tenant's column is a number"), \
(2, 'features.city', "is 2.5 (a float); the tenant's column is a category")]
>>> ColumnSchema({"age": "any"}).check([{"age": 1}, {"age": "forty"}])
[]
"""

from __future__ import annotations

from collections.abc import Sequence

from learners.state import persistent

NUMBER, CATEGORY, ANY = "number", "category", "any"
KINDS = (NUMBER, CATEGORY, ANY)
MAX_COLUMNS = 4096
_FITS = {NUMBER: frozenset({int, float}), CATEGORY: frozenset({str, bool, int})}


@persistent
class ColumnSchema:
    """``overrides``: the user's kinds by column (the model graph's ``schema``); the rest is
    inferred and kept in ``kinds``."""

    def __init__(self, overrides: dict | None = None, infer_rows: int = 100):
        self.overrides: dict[str, str] = dict(overrides or {})
        self.infer_rows = infer_rows
        self.kinds: dict[str, str] = {}
        self.pending: dict[str, list[int]] = {}  # column -> [numbers, other values] seen

    def kind(self, column: str) -> str | None:
        return self.overrides.get(column) or self.kinds.get(column)

    def check(self, X: Sequence[dict]) -> list[tuple[int, str, str]]:
        """The rows of ``X`` holding a value of the wrong type for its column, as (index,
        field, reason); columns first seen here get their kind from these rows."""
        self._infer(X)
        fits = {c: _FITS[k] for c, k in self.kinds.items() if k != ANY}
        for c, k in self.overrides.items():
            if k == ANY:
                fits.pop(c, None)
            else:
                fits[c] = _FITS[k]
        bad = []
        for i, x in enumerate(X):
            for c, v in x.items():
                ok = fits.get(c)
                if ok is None or v.__class__ in ok:
                    continue
                reason = self._misfit(c, v)
                if reason:
                    bad.append((i, f"features.{c}", reason))
                    break
        return bad

    def _misfit(self, column: str, v) -> str | None:
        if v is None:
            return None
        kind = self.kind(column)
        if kind == CATEGORY and v.__class__ is float and v.is_integer():
            return None
        return f"is {v!r} (a {type(v).__name__}); the tenant's column is a {kind}"

    def _infer(self, X: Sequence[dict]) -> None:
        known = self.kinds.keys() | self.overrides.keys()
        pending = self.pending
        for x in X:
            for c, v in x.items():
                if v is None or c in known:
                    continue
                counts = pending.get(c)
                if counts is None:
                    if len(pending) + len(self.kinds) >= MAX_COLUMNS:
                        continue
                    counts = pending[c] = [0, 0]
                counts[0 if v.__class__ is int or v.__class__ is float else 1] += 1
        for c in [c for c, (n, o) in pending.items() if n + o >= self.infer_rows]:
            n, o = pending.pop(c)
            self.kinds[c] = NUMBER if n > o else CATEGORY
