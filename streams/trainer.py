"""The trainer: micro-batches of labelled examples in, predict-then-learn for every model of the
tenant's model set, progressive metrics, and the rows ClickHouse stores. Kafka-free.

Learning is idempotent by example id: an id already learned (remembered in a bounded set that
is part of the checkpoint) is skipped. A deterministic slice of ids (by hash) is held out: scored
and measured, never learned.
"""

from __future__ import annotations

import hashlib
import pickle
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from learners.base import Learner
from learners.hashed import HashedLearner
from learners.progressive import Progressive

from .events import TrainingExample


def id_hash(example_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(example_id.encode(), digest_size=8).digest(), "little")


def is_holdout(example_id: str, fraction: float) -> bool:
    """Deterministic: the same id is always in or out, in every process."""
    return fraction > 0 and (id_hash(example_id) % 1_000_000) < fraction * 1_000_000


class LearnedIds:
    """The ids learned most recently (up to ``capacity``), as 64-bit hashes, oldest first."""

    def __init__(self, capacity: int = 2_000_000):
        self.capacity = capacity
        self._ids: dict[int, None] = {}

    def __contains__(self, h: int) -> bool:
        return h in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, h: int) -> None:
        self._ids[h] = None
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]


@dataclass
class BatchResult:
    examples: list[TrainingExample]  # the new ones, in order
    holdout: np.ndarray  # bool per example
    predictions: dict[str, np.ndarray]  # model -> p per example, before learning
    duplicates: int
    seconds: dict[str, float]  # model -> predict+learn time


@dataclass
class ModelSet:
    """One tenant's models, their metrics, and what they have learned."""

    tenant: str
    models: dict[str, Learner]
    holdout_fraction: float = 0.0
    learned: LearnedIds = field(default_factory=LearnedIds)
    train_metrics: dict[str, Progressive] = field(default_factory=dict)
    holdout_metrics: dict[str, Progressive] = field(default_factory=dict)
    learn_seconds: dict[str, float] = field(default_factory=dict)
    examples_learned: int = 0
    version: int = 0

    def __post_init__(self):
        for name in self.models:
            self.train_metrics.setdefault(name, Progressive())
            self.holdout_metrics.setdefault(name, Progressive())
            self.learn_seconds.setdefault(name, 0.0)

    def process(self, batch: Sequence[TrainingExample]) -> BatchResult:
        fresh: list[TrainingExample] = []
        seen: set[int] = set()
        for ex in batch:
            h = id_hash(ex.id)
            if h in self.learned or h in seen:
                continue
            seen.add(h)
            fresh.append(ex)
        dup = len(batch) - len(fresh)
        holdout = np.fromiter((is_holdout(e.id, self.holdout_fraction) for e in fresh),
                              dtype=np.bool_, count=len(fresh))
        X = [e.features for e in fresh]
        y = np.fromiter((e.label for e in fresh), dtype=np.float64, count=len(fresh))
        learn = ~holdout
        rows_by_hasher: dict = {}
        preds: dict[str, np.ndarray] = {}
        secs: dict[str, float] = {}
        for name, model in self.models.items():
            t = time.perf_counter()
            if isinstance(model, HashedLearner):
                key = model.hasher.key
                if key not in rows_by_hasher:
                    rows_by_hasher[key] = model.hasher.transform(X)
                p = model.progressive_rows(rows_by_hasher[key], y, learn)
            else:
                p = model.progressive_many(X, y, learn)
            secs[name] = time.perf_counter() - t
            self.learn_seconds[name] += secs[name]
            preds[name] = p
            self.train_metrics[name].update(p[learn], y[learn])
            if holdout.any():
                self.holdout_metrics[name].update(p[holdout], y[holdout])
        for ex in fresh:
            self.learned.add(id_hash(ex.id))
        self.examples_learned += int(learn.sum())
        if len(fresh):
            self.version += 1
        return BatchResult(fresh, holdout, preds, dup, secs)

    def metrics(self) -> dict[str, dict]:
        out = {}
        for name in self.models:
            snap = self.train_metrics[name].snapshot()
            hold = self.holdout_metrics[name].snapshot()
            secs = self.learn_seconds[name]
            snap.update(holdout_examples=hold["examples"], holdout_logloss=hold["logloss"],
                        holdout_auc=hold["auc"],
                        examples_per_s=(snap["examples"] + hold["examples"]) / secs if secs
                        else float("nan"))
            out[name] = snap
        return out

    # -- checkpoint -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        state = {
            "tenant": self.tenant, "holdout_fraction": self.holdout_fraction,
            "models": {n: (type(m), m.to_bytes()) for n, m in self.models.items()},
            "learned": self.learned, "train_metrics": self.train_metrics,
            "holdout_metrics": self.holdout_metrics, "learn_seconds": self.learn_seconds,
            "examples_learned": self.examples_learned, "version": self.version,
        }
        return zlib.compress(pickle.dumps(state, protocol=5), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelSet:
        s = pickle.loads(zlib.decompress(data))
        models = {n: kind.from_bytes(blob) for n, (kind, blob) in s.pop("models").items()}
        return cls(models=models, **s)


ModelFactory = Callable[[], dict[str, Learner]]


class Trainer:
    """Model sets by tenant, created on first sight from ``factory``."""

    def __init__(self, factory: ModelFactory, holdout_fraction: float = 0.0,
                 restored: dict[str, ModelSet] | None = None):
        self.factory = factory
        self.holdout_fraction = holdout_fraction
        self.sets: dict[str, ModelSet] = dict(restored or {})

    def model_set(self, tenant: str) -> ModelSet:
        if tenant not in self.sets:
            self.sets[tenant] = ModelSet(tenant, self.factory(), self.holdout_fraction)
        return self.sets[tenant]

    def process(self, batch: Sequence[TrainingExample]) -> dict[str, BatchResult]:
        by_tenant: dict[str, list[TrainingExample]] = {}
        for ex in batch:
            by_tenant.setdefault(ex.tenant, []).append(ex)
        return {t: self.model_set(t).process(exs) for t, exs in by_tenant.items()}
