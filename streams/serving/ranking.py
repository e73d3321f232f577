"""One scoring path: what ``/recommend`` answers and what the worker publishes for a request
that came through Kafka are made by :meth:`Ranker.rank_many`, from the same snapshots
(followed from the ``model-updates`` topic), the same output and the same fallback, in one
format (:class:`~streams.contracts.events.Recommendation`); the recommendations topic carries
every answer given, by either path, ``served_by`` saying which.

A request with many candidates is scored on its own, its user and context features built once
(:meth:`Snapshot.score_request`); requests with a few candidates are scored together, one
vectorised call per tenant and batch, their pairs by column where their features allow
(:func:`~streams.contracts.features.pairs_by_column`, then :meth:`Snapshot.score_request` as
one request with nothing shared), else each pair's dict (:meth:`Snapshot.score`): the same
probabilities.

>>> from streams.contracts.events import AdRequest, Candidate
>>> r = Ranker(ModelStore(), "ensemble_stacking")
>>> [rec.ranked for rec in r.rank_many([AdRequest("r1", 1.0, "t", {}, [Candidate("a"),
...                                                                     Candidate("b")])])]
[[{'ad_id': 'a', 'score': 1.0}, {'ad_id': 'b', 'score': 0.666667}]]
"""

from __future__ import annotations

import time

import numpy as np

from learners.hashing import FeatureHasher
from streams.contracts.events import AdRequest, Recommendation
from streams.contracts.features import pair_features, pairs_by_column, request_features
from streams.serving.snapshots import ModelStore, Snapshot

MANY = 8  # candidates from which a request is scored on its own
MANY_RANKED = 16  # candidates from which ranked() sorts with numpy


class Ranker:
    def __init__(self, store: ModelStore, default_output: str, popularity=None,
                 served_by: str = "replica"):
        self.store, self.default_output, self.popularity = store, default_output, popularity
        self.served_by = served_by
        self.hasher = FeatureHasher()  # token hashes of requests, memoised across snapshots

    def output_for(self, snap: Snapshot, asked: str | None) -> str:
        outputs = snap.outputs()
        if asked:
            if asked not in outputs:
                raise LookupError(f"model {asked!r} is not served for tenant {snap.tenant}; "
                                  f"served: {outputs}")
            return asked
        if snap.serve in outputs:  # the tenant's spec says
            return snap.serve
        return self.default_output if self.default_output in outputs else outputs[0]

    def rank_many(self, reqs: list[AdRequest], model: str | None = None
                  ) -> list[Recommendation]:
        """Each request's candidates ranked best first (ties keep the given order). Raises
        LookupError for an unknown ``model``; scores may be non-finite (callers decide)."""
        t0 = time.perf_counter()
        scores: list = [None] * len(reqs)
        how: list = [None] * len(reqs)
        by_tenant: dict[str, list[int]] = {}
        for i, r in enumerate(reqs):
            by_tenant.setdefault(r.tenant, []).append(i)
        for tenant, idx in by_tenant.items():
            snap = self.store.get(tenant)
            if snap is None:
                for i in idx:
                    scores[i], how[i] = self.fallback(reqs[i])
                continue
            used = self.output_for(snap, model)
            few = [i for i in idx if len(reqs[i].candidates) < MANY]
            for i in idx:
                if len(reqs[i].candidates) >= MANY:
                    shared, items = request_features(reqs[i].user, reqs[i].context,
                                                     reqs[i].candidates)
                    scores[i] = snap.score_request(shared, items, used, self.hasher)
            if few:
                flat, at = self._score_few(snap, [reqs[i] for i in few], used), 0
                for i in few:
                    n = len(reqs[i].candidates)
                    scores[i], at = flat[at:at + n], at + n
            for i in idx:
                how[i] = (snap.label, used, None)
        took = round((time.perf_counter() - t0) * 1000 / max(len(reqs), 1), 3)
        now = time.time()
        return [Recommendation(request_id=r.id, event_time=now, tenant=r.tenant,
                               model_version=version, model=used, fallback=kind is not None,
                               fallback_kind=kind, ranked=ranked(r, s), took_ms=took,
                               served_by=self.served_by)
                for r, s, (version, used, kind) in zip(reqs, scores, how, strict=True)]

    def _score_few(self, snap: Snapshot, reqs: list[AdRequest], used: str) -> np.ndarray:
        """The probabilities of the candidates of ``reqs``, in order: as one request of
        their pairs by column where they allow it (:func:`pairs_by_column`), else of each
        pair's features."""
        items = pairs_by_column(reqs)
        if items is not None:
            return snap.score_request({}, items, used, self.hasher)
        return snap.score([pair_features(r.user, r.context, c)
                           for r in reqs for c in r.candidates], used)

    def fallback(self, req: AdRequest):
        """Scores and (version, output, kind) for a tenant with no model yet: popularity
        when the replica has it, else the given order."""
        if self.popularity is not None:
            pop = self.popularity.scores(req.tenant, [c.ad_id for c in req.candidates])
            if pop is not None:
                return pop, (f"{req.tenant}:popularity", "popularity", "popularity")
        n = len(req.candidates)
        return ([1.0 - i / (n + 1) for i in range(n)],
                (f"{req.tenant}:none", "given-order", "given-order"))


def ranked(req: AdRequest, scores) -> list[dict]:
    """The candidates best first, ties in the given order, non-finite scores as numpy's
    ``argsort`` places them (+inf first, then the finite, -inf, NaN last), each score rounded
    to 6 places. Plain Python: for the few candidates of most requests, numpy's per-call cost
    was most of it; from :data:`MANY_RANKED` candidates on, numpy's sort is the cheaper (100
    candidates: 56 -> 11 us).

    >>> from streams.contracts.events import Candidate
    >>> req = AdRequest("r", 1.0, "t", {}, [Candidate(a) for a in "abcd"])
    >>> [(d["ad_id"], d["score"]) for d in ranked(req, [0.2, float("nan"), 0.7, 0.2])]
    [('c', 0.7), ('a', 0.2), ('d', 0.2), ('b', nan)]
    >>> ranked(AdRequest("r", 1.0, "t", {}, [Candidate("a")]), np.array([0.12345678]))
    [{'ad_id': 'a', 'score': 0.123457}]
    """
    cands = req.candidates
    if len(cands) == 1:  # a stream's request, most often
        return [{"ad_id": cands[0].ad_id, "score": round(float(scores[0]), 6)}]
    if len(cands) >= MANY_RANKED:  # numpy's stable argsort of -s orders as described
        arr = np.asarray(scores, dtype=np.float64)
        r = np.round(arr, 6).tolist()
        return [{"ad_id": cands[i].ad_id, "score": r[i]}
                for i in np.argsort(-arr, kind="stable").tolist()]
    s = scores.tolist() if isinstance(scores, np.ndarray) else [float(x) for x in scores]
    order = sorted(range(len(s)), key=lambda i: (s[i] != s[i], -s[i]))
    return [{"ad_id": cands[i].ad_id, "score": round(s[i], 6)} for i in order]
