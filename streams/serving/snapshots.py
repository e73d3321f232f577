"""Model snapshots as serving replicas hold them: what a trainer publishes to the compacted
``model-updates`` topic (key = tenant; written by :mod:`streams.state.model_sets`), loaded from
its signed state file, and scored by. A snapshot holds the members and the ensembles, not the
training state (learned ids, metrics): replicas hold no training state. ``ModelStore`` keeps
the newest snapshot per tenant and swaps it atomically."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ensemble.base import Combiner
from learners.base import Freezable, Learner
from learners.compiled import compile_linear
from learners.hashed import HashedLearner
from learners.hashing import FeatureHasher
from streams.state.statefile import StateRejected, unseal
from streams.training.model_set import ENSEMBLE_PREFIX


@dataclass
class Snapshot:
    tenant: str
    version: int
    created_at: float
    models: dict  # name -> Learner
    ensembles: dict  # name -> Combiner
    members: list[str]  # member output order the combiners expect
    metrics: dict  # name -> progressive metrics at publication
    compiled: dict = field(default_factory=dict)  # name -> frozen scorer (river linear models)
    over: dict = field(default_factory=dict)  # ensemble -> member outputs (absent: members)
    serve: str = ""  # the output the tenant's spec ranks by ("": the replica's setting)

    @property
    def label(self) -> str:
        return f"{self.tenant}:v{self.version}"

    def outputs(self) -> list[str]:
        return self.members + [ENSEMBLE_PREFIX + e for e in self.ensembles]

    def score(self, X: list[dict], output: str) -> np.ndarray:
        """Click probabilities of ``X`` (flat feature dicts) by ``output``."""
        return self._score(output, lambda name, m: m.predict_proba_many(X),
                           lambda name, m: m.predict_outputs(X, name))

    def score_request(self, shared: dict, items: list[dict], output: str,
                      hasher: FeatureHasher | None = None) -> np.ndarray:
        """Click probabilities of one request's candidates (``{**shared, **item}`` each, see
        :func:`streams.contracts.features.request_features`) by ``output``. The request's token hashes
        are looked up once (by ``hasher``: a long-lived one keeps its memo across snapshots)
        and shared by the hashed models and the compiled river ones."""
        rows: dict = {}
        cache: dict = {}

        def prepared():
            if "hashes" not in cache:
                h = hasher or next((m.hasher for m in self.models.values()
                                    if isinstance(m, HashedLearner)), None) or FeatureHasher()
                cache["hashes"] = h.prepare_request(shared, items)
            return cache["hashes"]

        def one(name, m):
            if isinstance(m, HashedLearner):
                if m.hasher.key not in rows:
                    rows[m.hasher.key] = m.hasher.transform_request(shared, items, prepared())
                return m.predict_rows(rows[m.hasher.key])
            if name in self.compiled and not prepared().general:
                return self.compiled[name].predict(prepared())
            return m.predict_request(shared, items)

        return self._score(output, one, lambda name, m: m.predict_outputs(
            [{**shared, **it} for it in items], name))

    def _score(self, output: str, single, multi) -> np.ndarray:
        """Only the model that makes ``output``, or every member for an ensemble."""
        if output in self.models and self.models[output].outputs is None:
            return single(output, self.models[output])
        cols: dict[str, np.ndarray] = {}
        for name, m in self.models.items():
            if m.outputs is None:
                cols[name] = single(name, m)
            else:
                cols.update(multi(name, m))
        if output in cols:
            return cols[output]
        name = output.removeprefix(ENSEMBLE_PREFIX)
        return self.ensembles[name].combine_many(
            np.column_stack([cols[m] for m in self.over.get(name) or self.members]))


def load_snapshot(data: bytes, key: bytes) -> Snapshot:
    """A snapshot from a signed state file, or :class:`StateRejected`."""
    _, s = unseal(key, data, "snapshot", serving=True)  # its members read for scoring only
    fields = {"tenant", "version", "created_at", "models", "ensembles", "members", "metrics"}
    if not isinstance(s, dict) or not fields <= set(s) <= fields | {"over", "serve"}:
        raise StateRejected("malformed snapshot: not a snapshot's fields")
    over, serve = s.get("over", {}), s.get("serve", "")
    if not isinstance(serve, str) or not isinstance(over, dict) or not all(
            e in s["ensembles"] and isinstance(cols, list) and cols
            and set(cols) <= set(s["members"]) for e, cols in over.items()):
        raise StateRejected("malformed snapshot: its ensembles' members are not its members")
    if not all(isinstance(m, Learner) for m in s["models"].values()) or \
            not all(isinstance(c, Combiner) for c in s["ensembles"].values()):
        raise StateRejected("malformed snapshot: a member is not a learner or combiner")
    models = s.pop("models")
    for m in models.values():
        if isinstance(m, Freezable):  # its serving tables now, not at its first request,
            m.serve_only()  # and only those: a snapshot's member never learns (those read
            # for serving hold only their tables already)
    compiled = {n: c for n, m in models.items() if (c := compile_linear(m)) is not None}
    return Snapshot(models=models, compiled=compiled, **s)


class ModelStore:
    """The newest snapshot per tenant. Readers take a reference; a swap replaces the whole
    mapping at once, so a request is scored by one version from start to end."""

    def __init__(self):
        self._by_tenant: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self.updates = 0

    def get(self, tenant: str) -> Snapshot | None:
        return self._by_tenant.get(tenant)

    def all(self) -> dict[str, Snapshot]:
        return self._by_tenant

    def swap(self, snap: Snapshot) -> bool:
        with self._lock:
            cur = self._by_tenant.get(snap.tenant)
            if cur is not None and cur.version >= snap.version and \
                    cur.created_at >= snap.created_at:
                return False  # an older or equal version (a compacted replay)
            self._by_tenant = {**self._by_tenant, snap.tenant: snap}
            self.updates += 1
            return True
