"""Features of one (request, candidate) pair: flat, namespaced, ready for any learner.

``u_*`` user features, ``c_*`` context, ``a_*`` the candidate ad. Ages and years are bucketed to
decades (a 27-year-old and a 29-year-old behave alike). Crosses are not built here: hashed
learners take them as configuration (:class:`learners.hashing.FeatureHasher`).

>>> from streams.contracts.events import Candidate
>>> sorted(pair_features({"age": 27, "gender": "F"}, {"hour": 9},
...                      Candidate("m1", {"genre": "Drama", "year": 1997})).items())
[('a_ad_id', 'm1'), ('a_genre', 'Drama'), ('a_year', 1990), ('c_hour', 9), ('u_age', 20), ('u_gender', 'F')]
"""

from __future__ import annotations

from learners.columns import ItemColumns, by_columns, prefixed, uniform_columns
from streams.contracts.events import Candidate

DECADES = {"age", "year"}


def decade(v):
    """An int rounded down to its decade; any other value (a bool too) as it is."""
    return v // 10 * 10 if isinstance(v, int) and not isinstance(v, bool) else v


_DECADE = dict.fromkeys(DECADES, decade)


def _put(out: dict, prefix: str, feats: dict) -> None:
    for k, v in feats.items():
        out[prefix + k] = decade(v) if k in DECADES else v


def pair_features(user: dict, context: dict, cand: Candidate) -> dict:
    out: dict = {}
    _put(out, "u_", user)
    _put(out, "c_", context)
    out["a_ad_id"] = cand.ad_id
    _put(out, "a_", cand.features)
    return out


def request_features(user: dict, context: dict, candidates) -> tuple[dict, ItemColumns]:
    """One request as (shared, items): ``{**shared, **items[i]}`` equals ``pair_features`` of
    candidate ``i``; the user and context part is built once, the candidates' part column by
    column (:class:`learners.columns.ItemColumns`).

    >>> from streams.contracts.events import Candidate
    >>> shared, items = request_features({"age": 27}, {"hour": 9}, [Candidate("m1", {"year": 1997})])
    >>> {**shared, **items[0]} == pair_features({"age": 27}, {"hour": 9}, Candidate("m1", {"year": 1997}))
    True
    >>> items.columns
    {'a_ad_id': ['m1'], 'a_year': [1990]}
    """
    shared: dict = {}
    _put(shared, "u_", user)
    _put(shared, "c_", context)
    cols = by_columns([c.features for c in candidates], "a_", _DECADE).columns
    if "a_ad_id" in cols:  # a feature named ad_id: it overrides the id, as in pair_features
        return shared, by_columns([{"ad_id": c.ad_id, **c.features} for c in candidates],
                                  "a_", _DECADE)
    return shared, ItemColumns({"a_ad_id": [c.ad_id for c in candidates], **cols})


def pairs_by_column(reqs) -> ItemColumns | None:
    """The :func:`pair_features` of every (request, candidate) of ``reqs``, in that order, as
    columns: where every request lists the same user and context names and every candidate
    the same feature names, each in the same order (a stream's requests do), the dicts would
    all list the same names, and each column is built straight from the requests. None
    where they do not, or a candidate has a feature named ``ad_id``.

    >>> from streams.contracts.events import AdRequest, Candidate
    >>> reqs = [AdRequest("r1", 1.0, "t", {"age": 27}, [Candidate("m1", {"year": 1997}),
    ...                                                 Candidate("m2", {"year": 2003})]),
    ...         AdRequest("r2", 1.0, "t", {"age": 41}, [Candidate("m3", {"year": 1985})])]
    >>> cols = pairs_by_column(reqs)
    >>> cols.columns
    {'u_age': [20, 20, 40], 'a_ad_id': ['m1', 'm2', 'm3'], 'a_year': [1990, 2000, 1980]}
    >>> list(cols) == [pair_features(r.user, r.context, c) for r in reqs for c in r.candidates]
    True
    >>> pairs_by_column(reqs + [AdRequest("r3", 1.0, "t", {"gender": "F"}, [Candidate("m1")])])
    """
    reqs = [r for r in reqs if r.candidates]  # one with none has no pair
    cands = [c for r in reqs for c in r.candidates]
    if not cands:
        return None
    users, contexts, feats = parts = (uniform_columns([r.user for r in reqs]),
                                      uniform_columns([r.context for r in reqs]),
                                      uniform_columns([c.features for c in cands]))
    if any(p is None for p in parts) or "ad_id" in feats.columns:
        return None
    counts = [len(r.candidates) for r in reqs]

    def spread(columns: dict[str, list]) -> dict[str, list]:
        """A request's value in each of its candidates' rows."""
        if len(cands) == len(reqs):  # one candidate each: a request's value is its row's
            return columns
        return {k: [v for v, n in zip(col, counts, strict=True) for _ in range(n)]
                for k, col in columns.items()}

    return ItemColumns({**prefixed(spread(users.columns), "u_", _DECADE),
                        **prefixed(spread(contexts.columns), "c_", _DECADE),
                        "a_ad_id": [c.ad_id for c in cands],
                        **prefixed(feats.columns, "a_", _DECADE)}, len(cands))


#: Crosses that pay on ad data (user affinity to ad content; ad appeal by audience segment),
#: chosen on the MovieLens stream with ops/bench/learning.py.
DEFAULT_CROSSES = (
    ("u_user_id", "a_genre"),
    ("u_user_id", "a_year"),
    ("a_ad_id", "u_gender"),
    ("a_ad_id", "u_age"),
    ("a_ad_id", "u_occupation"),
    ("u_occupation", "a_genre"),
    ("u_age", "a_genre"),
    ("u_gender", "a_genre"),
)
