"""One request's candidates by column, handed to the learners that score a request column by
column (:meth:`FeatureHasher.prepare_request`, the forest's binning) without a feature dict
per candidate in between; a stream's batch of examples the same way (``FeatureHasher.transform``).

A serving request carries a hundred candidates with the same few features. As dicts, every
step of the request path (checking, prefixing, hashing, binning) ran a Python loop over the
candidates and then over their features; as columns, each step is a few calls per feature,
each over all the candidates at once in C (``map``, ``set``, ``max``). The dicts are still
there for a learner that wants them: :class:`ItemColumns` is a sequence of the same dicts,
made on first use.

>>> items = ItemColumns({"a_ad_id": ["m1", "m2"], "a_year": [1990, None]})
>>> len(items), items.names
(2, ['a_ad_id', 'a_year'])
>>> list(items)  # None is a missing feature, as everywhere in the learners
[{'a_ad_id': 'm1', 'a_year': 1990}, {'a_ad_id': 'm2', 'a_year': None}]
>>> by_columns([{"year": 1997}, {"year": 2003, "genre": "War"}], "a_",
...            shift={"year": lambda v: v // 10 * 10}).columns
{'a_year': [1990, 2000], 'a_genre': [None, 'War']}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter


class ItemColumns(Sequence):
    """Feature ``name`` of candidate ``i`` is ``columns[name][i]`` (None: it has none); the
    names in the order a candidate's dict lists them (each name where it first appears).
    Each candidate's dict has every name, None where it has none: merged over a request's
    shared features (``{**shared, **item}``), a column hides a shared feature of its name."""

    __slots__ = ("columns", "n", "_rows")

    def __init__(self, columns: dict[str, list], n: int | None = None):
        lengths = set(map(len, columns.values())) | ({n} if n is not None else set())
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self.columns, self.n = columns, lengths.pop() if lengths else 0
        self._rows: list[dict] | None = None

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return self.n

    def rows(self) -> list[dict]:
        """Each candidate's feature dict (made once)."""
        if self._rows is None:
            names, cols = list(self.columns), list(self.columns.values())
            self._rows = [dict(zip(names, vals, strict=True))
                          for vals in zip(*cols, strict=True)] if cols else \
                [{} for _ in range(self.n)]
        return self._rows

    def __getitem__(self, i):
        return self.rows()[i]

    def __iter__(self):
        return iter(self.rows())


def by_columns(feats: Sequence[dict], prefix: str = "",
               shift: dict[str, Callable] | None = None) -> ItemColumns:
    """Columns of a list of feature dicts, each name prefixed, ``shift[name]`` applied to
    each value of that column (None included)."""
    cols = uniform_columns(feats)
    raw = cols.columns if cols is not None else \
        {k: [f.get(k) for f in feats] for k in names_of(feats)}
    return ItemColumns(prefixed(raw, prefix, shift), len(feats))


def prefixed(columns: dict[str, list], prefix: str,
             shift: dict[str, Callable] | None = None) -> dict[str, list]:
    """``columns`` with each name prefixed, ``shift[name]`` applied to each value of that
    column."""
    return {prefix + k: list(map(shift[k], col)) if shift and k in shift else col
            for k, col in columns.items()}


def uniform_columns(feats: Sequence[dict]) -> ItemColumns | None:
    """The columns of dicts that all list the same names in the same order; None where they
    do not (or there is none)."""
    if not uniform(feats):
        return None
    return ItemColumns({k: list(map(itemgetter(k), feats)) for k in feats[0]}, len(feats))


def uniform(feats: Sequence[dict]) -> bool:
    """Every dict has the same names in the same order (and there is one)."""
    return bool(feats) and len(set(map(tuple, feats))) == 1


def names_of(feats: Sequence[dict]) -> list[str]:
    """Every name of the dicts, each where it first appears."""
    return list(dict.fromkeys(chain.from_iterable(feats)))
