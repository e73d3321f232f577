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

from ensemble.base import Combiner
from learners.base import Learner
from learners.guard import OverfitGuard
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


ENSEMBLE_PREFIX = "ensemble_"


@dataclass
class ModelSet:
    """One tenant's models (members), the ensembles over them, their metrics, the overfitting
    guard, and what they have learned. A model with several outputs (heads sharing parameters)
    contributes one member per output."""

    tenant: str
    models: dict[str, Learner]
    holdout_fraction: float = 0.0
    ensembles: dict[str, Combiner] = field(default_factory=dict)
    guard: OverfitGuard | None = None
    rollback: bool = False
    learned: LearnedIds = field(default_factory=LearnedIds)
    train_metrics: dict[str, Progressive] = field(default_factory=dict)
    holdout_metrics: dict[str, Progressive] = field(default_factory=dict)
    learn_seconds: dict[str, float] = field(default_factory=dict)
    good_states: dict[str, bytes] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # output -> model
    examples_learned: int = 0
    version: int = 0

    def __post_init__(self):
        for name in self.models:
            self.learn_seconds.setdefault(name, 0.0)

    def _metrics_for(self, output: str) -> None:
        self.train_metrics.setdefault(output, Progressive())
        self.holdout_metrics.setdefault(output, Progressive())

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
                outs = {name: model.progressive_rows(rows_by_hasher[key], y, learn)}
            elif hasattr(model, "progressive_outputs"):
                outs = model.progressive_outputs(X, y, learn)
            else:
                outs = {name: model.progressive_many(X, y, learn)}
            secs[name] = time.perf_counter() - t
            self.learn_seconds[name] += secs[name]
            for out_name in outs:
                self.owner[out_name] = name
            preds.update(outs)
        if self.ensembles and len(fresh):
            members = np.column_stack([preds[m] for m in self.member_names(preds)])
            for ename, comb in self.ensembles.items():
                preds[ENSEMBLE_PREFIX + ename] = comb.combine_progressive(members, y, learn)
        for out_name, p in preds.items():
            self._metrics_for(out_name)
            self.train_metrics[out_name].update(p[learn], y[learn])
            if holdout.any():
                self.holdout_metrics[out_name].update(p[holdout], y[holdout])
        for ex in fresh:
            self.learned.add(id_hash(ex.id))
        self.examples_learned += int(learn.sum())
        if len(fresh):
            self.version += 1
        return BatchResult(fresh, holdout, preds, dup, secs)

    @staticmethod
    def member_names(preds: dict) -> list[str]:
        return [n for n in preds if not n.startswith(ENSEMBLE_PREFIX)]

    def metrics(self) -> dict[str, dict]:
        """Per output (members and ensembles): progressive and holdout metrics, learn rate."""
        out = {}
        for name in self.train_metrics:
            snap = self.train_metrics[name].snapshot()
            hold = self.holdout_metrics[name].snapshot()
            secs = self.learn_seconds.get(self.owner.get(name, ""), 0.0)
            snap.update(holdout_examples=hold["examples"], holdout_logloss=hold["logloss"],
                        holdout_auc=hold["auc"], holdout_window_logloss=hold["window_logloss"],
                        examples_per_s=(snap["examples"] + hold["examples"]) / secs if secs
                        else float("nan"))
            out[name] = snap
        return out

    def check_guard(self) -> list[dict]:
        """Run the overfitting guard over every member; remember best states; roll back."""
        if self.guard is None:
            return []
        alerts = []
        for name, m in self.metrics().items():
            if name.startswith(ENSEMBLE_PREFIX) or name not in self.owner:
                continue
            verdict = self.guard.check(name, m["window_logloss"], m["holdout_window_logloss"],
                                       m["holdout_examples"])
            model = self.owner[name]
            if verdict == "best" and self.rollback:
                self.good_states[model] = self.models[model].to_bytes()
            elif verdict in ("gap", "degrading"):
                rolled = self.rollback and model in self.good_states
                if rolled:
                    self.models[model] = type(self.models[model]).from_bytes(
                        self.good_states[model])
                alerts.append({"tenant": self.tenant, "model": name, "reason": verdict,
                               "train_logloss": m["window_logloss"],
                               "holdout_logloss": m["holdout_window_logloss"],
                               "rolled_back": rolled, "version": self.version})
        return alerts

    # -- checkpoint -----------------------------------------------------------------------
    def model_blobs(self) -> dict:
        """Each model's state, serialised once for a checkpoint and a snapshot alike."""
        return {n: (type(m), m.to_bytes()) for n, m in self.models.items()}

    def to_bytes(self, blobs: dict | None = None) -> bytes:
        state = {
            "tenant": self.tenant, "holdout_fraction": self.holdout_fraction,
            "models": blobs if blobs is not None else self.model_blobs(),
            "ensembles": self.ensembles, "guard": self.guard, "rollback": self.rollback,
            "learned": self.learned, "train_metrics": self.train_metrics,
            "holdout_metrics": self.holdout_metrics, "learn_seconds": self.learn_seconds,
            "good_states": self.good_states, "owner": self.owner,
            "examples_learned": self.examples_learned, "version": self.version,
        }
        return zlib.compress(pickle.dumps(state, protocol=5), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelSet:
        s = pickle.loads(zlib.decompress(data))
        models = {n: kind.from_bytes(blob) for n, (kind, blob) in s.pop("models").items()}
        return cls(models=models, **s)


ModelFactory = Callable[[], dict[str, Learner]]
EnsembleFactory = Callable[[], dict[str, Combiner]]


class Trainer:
    """Model sets by tenant, created on first sight from the factories."""

    def __init__(self, factory: ModelFactory, holdout_fraction: float = 0.0,
                 restored: dict[str, ModelSet] | None = None,
                 ensembles: EnsembleFactory | None = None,
                 guard: Callable[[], OverfitGuard] | None = None, rollback: bool = False):
        self.factory = factory
        self.holdout_fraction = holdout_fraction
        self.ensembles = ensembles
        self.guard = guard
        self.rollback = rollback
        self.sets: dict[str, ModelSet] = dict(restored or {})

    def model_set(self, tenant: str) -> ModelSet:
        if tenant not in self.sets:
            self.sets[tenant] = ModelSet(
                tenant, self.factory(), self.holdout_fraction,
                ensembles=self.ensembles() if self.ensembles else {},
                guard=self.guard() if self.guard else None, rollback=self.rollback)
        return self.sets[tenant]

    def process(self, batch: Sequence[TrainingExample]) -> dict[str, BatchResult]:
        by_tenant: dict[str, list[TrainingExample]] = {}
        for ex in batch:
            by_tenant.setdefault(ex.tenant, []).append(ex)
        return {t: self.model_set(t).process(exs) for t, exs in by_tenant.items()}
