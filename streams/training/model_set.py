"""The trainer: micro-batches of labelled examples in, predict-then-learn for every model of the
tenant's model set, progressive metrics, and the rows ClickHouse stores. Kafka-free.

Learning is idempotent by example id, within a stated horizon (:mod:`learners.dedup`): an id
already learned is skipped; an example older than what the set still remembers is *late* and
returned apart (the caller dead-letters it), never learned twice. A deterministic slice of ids
(by hash) is held out: scored and measured, never learned. A model's prediction that is not a
finite probability is replaced by 0.5 for the metrics and ensembles, and counted. An example's
weight scales its update in every model and ensemble, and its share of every metric. An
example with a value of the wrong type for its column (:mod:`streams.training.columns`) is
refused, returned apart with the reason (the caller dead-letters it), and not learned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ensemble.base import Combiner
from learners.base import Learner
from learners.dedup import DUPLICATE, LATE, LearnedIds, id_hash
from learners.guard import OverfitGuard
from learners.hashed import HashedLearner
from learners.progressive import Progressive
from learners.state import copy_state, decode, encode
from streams.contracts.events import TrainingExample
from streams.training.columns import ColumnSchema

OPTIONAL_STATE = {"test_metrics", "over", "spec", "serve", "columns"}


def is_holdout(example_id: str, fraction: float) -> bool:
    """Deterministic: the same id is always in or out, in every process."""
    return fraction > 0 and (id_hash(example_id) % 1_000_000) < fraction * 1_000_000


@dataclass
class BatchResult:
    examples: list[TrainingExample]  # the new ones, in order
    holdout: np.ndarray  # bool per example: not learned (held out, or a test row)
    predictions: dict[str, np.ndarray]  # model -> p per example, before learning
    duplicates: int
    seconds: dict[str, float]  # model -> predict+learn time
    late: list[TrainingExample] = field(default_factory=list)  # beyond the horizon: not learned
    nonfinite: dict[str, int] = field(default_factory=dict)  # model -> predictions replaced
    refused: list[tuple[TrainingExample, str, str]] = field(default_factory=list)  # wrong type


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
    test_metrics: dict[str, Progressive] = field(default_factory=dict)  # scored, never learned
    learn_seconds: dict[str, float] = field(default_factory=dict)
    good_states: dict[str, tuple] = field(default_factory=dict)  # model -> encoded best
    owner: dict[str, str] = field(default_factory=dict)  # output -> model
    examples_learned: int = 0
    examples_handled: int = 0  # learned or held out
    version: int = 0
    over: dict[str, list] = field(default_factory=dict)  # ensemble -> its members (absent: all)
    spec: str = ""  # the tenant's model graph (JSON) this set was built from; "": the default
    serve: str = ""  # the output serving ranks by; "": the replica's setting
    columns: ColumnSchema = field(default_factory=ColumnSchema)  # what each feature is

    def __post_init__(self):
        for name in self.models:
            self.learn_seconds.setdefault(name, 0.0)

    def _metrics_for(self, output: str) -> None:
        self.train_metrics.setdefault(output, Progressive())
        self.holdout_metrics.setdefault(output, Progressive())
        self.test_metrics.setdefault(output, Progressive())

    def process(self, batch: Sequence[TrainingExample]) -> BatchResult:
        hashes = np.fromiter((id_hash(ex.id) for ex in batch), dtype=np.uint64, count=len(batch))
        times = np.fromiter((ex.event_time for ex in batch), dtype=np.float64, count=len(batch))
        status = self.learned.classify(hashes, times)
        keep = status == 0
        refused = []
        if keep.any():
            idx = np.flatnonzero(keep)
            for i, fld, reason in self.columns.check([batch[j].features for j in idx]):
                keep[idx[i]] = False
                refused.append((batch[idx[i]], fld, reason))
        fresh = [ex for ex, k in zip(batch, keep.tolist(), strict=True) if k]
        late = [ex for ex, st in zip(batch, status.tolist(), strict=True) if st == LATE]
        dup = int((status == DUPLICATE).sum())
        test = np.fromiter((e.test for e in fresh), dtype=np.bool_, count=len(fresh))
        holdout = np.fromiter((is_holdout(e.id, self.holdout_fraction) for e in fresh),
                              dtype=np.bool_, count=len(fresh)) & ~test
        X = [e.features for e in fresh]
        y = np.fromiter((e.label for e in fresh), dtype=np.float64, count=len(fresh))
        w = np.fromiter((e.weight for e in fresh), dtype=np.float64, count=len(fresh))
        learn = ~holdout & ~test
        weights = np.where(learn, w, 0.0)  # what each model learns each example with
        rows_by_hasher: dict = {}
        preds: dict[str, np.ndarray] = {}
        secs: dict[str, float] = {}
        nonfinite: dict[str, int] = {}
        for name, model in self.models.items():
            t = time.perf_counter()
            if isinstance(model, HashedLearner):  # one hashing of the batch for all of them
                key = model.hasher.key
                if key not in rows_by_hasher:
                    rows_by_hasher[key] = model.hasher.transform(X)
                outs = {name: model.progressive_rows(rows_by_hasher[key], y, weights)}
            else:
                outs = model.progressive_outputs(X, y, weights, name)
            secs[name] = time.perf_counter() - t
            self.learn_seconds[name] += secs[name]
            for out_name, p in outs.items():
                self.owner[out_name] = name
                bad = ~np.isfinite(p)
                if bad.any():  # never in a metric or an ensemble: counted instead
                    p = np.where(bad, 0.5, p)
                    nonfinite[out_name] = int(bad.sum())
                preds[out_name] = p
        if self.ensembles and len(fresh):
            names = self.member_names(preds)
            for ename, comb in self.ensembles.items():
                cols = self.ensemble_members(ename, names)
                members = np.column_stack([preds[m] for m in cols])
                preds[ENSEMBLE_PREFIX + ename] = comb.combine_progressive(members, y, weights)
        for out_name, p in preds.items():
            self._metrics_for(out_name)
            self.train_metrics[out_name].update(p[learn], y[learn], w[learn])
            if holdout.any():
                self.holdout_metrics[out_name].update(p[holdout], y[holdout], w[holdout])
            if test.any():
                self.test_metrics[out_name].update(p[test], y[test], w[test])
        self.learned.add(hashes[keep], times[keep])
        self.examples_learned += int(learn.sum())
        self.examples_handled += len(fresh)
        if len(fresh):
            self.version += 1
        return BatchResult(fresh, ~learn, preds, dup, secs, late, nonfinite, refused)

    @staticmethod
    def member_names(preds: dict) -> list[str]:
        return [n for n in preds if not n.startswith(ENSEMBLE_PREFIX)]

    def member_outputs(self) -> list[str]:
        """The members' outputs in the order the models are (the order ``process`` gives
        them to the ensembles), as far as they are known (a multi-output model's, once it
        has predicted)."""
        return [o for name in self.models for o, owner in self.owner.items() if owner == name]

    def ensemble_members(self, ensemble: str, outputs: list[str]) -> list[str]:
        """The member outputs ``ensemble`` combines, in order: those of the models its spec
        names (``over``), or all of them."""
        over = self.over.get(ensemble)
        return outputs if not over else [o for o in outputs if self.owner.get(o, o) in over]

    def metrics(self) -> dict[str, dict]:
        """Per output (members and ensembles): progressive and holdout metrics, learn rate."""
        out = {}
        for name in self.train_metrics:
            snap = self.train_metrics[name].snapshot()
            hold = self.holdout_metrics[name].snapshot()
            tested = self.test_metrics[name].snapshot() if name in self.test_metrics else None
            secs = self.learn_seconds.get(self.owner.get(name, ""), 0.0)
            snap.update(holdout_examples=hold["examples"], holdout_logloss=hold["logloss"],
                        holdout_auc=hold["auc"], holdout_window_logloss=hold["window_logloss"],
                        test_examples=tested["examples"] if tested else 0,
                        test_logloss=tested["logloss"] if tested else float("nan"),
                        test_auc=tested["auc"] if tested else float("nan"),
                        examples_per_s=(snap["examples"] + hold["examples"]) / secs if secs
                        else float("nan"))
            out[name] = snap
        return out

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """Per output: its progressive log loss along the stream (examples, block mean)."""
        return {name: m.curve.points() if m.curve is not None else []
                for name, m in self.train_metrics.items()}

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
                self.good_states[model] = encode(self.models[model])
            elif verdict in ("gap", "degrading"):
                rolled = self.rollback and model in self.good_states
                if rolled:
                    tree, arrays = self.good_states[model]
                    self.models[model] = decode(tree, [a.copy() for a in arrays])
                alerts.append({"tenant": self.tenant, "model": name, "reason": verdict,
                               "train_logloss": m["window_logloss"],
                               "holdout_logloss": m["holdout_window_logloss"],
                               "rolled_back": rolled, "version": self.version})
        return alerts

    # -- state (see streams.state.statefile) ------------------------------------------------------
    def to_state(self) -> dict:
        """Everything a checkpoint holds: plain values, arrays and allowed objects."""
        return {
            "tenant": self.tenant, "holdout_fraction": self.holdout_fraction,
            "models": self.models, "ensembles": self.ensembles, "guard": self.guard,
            "rollback": self.rollback, "learned": self.learned,
            "train_metrics": self.train_metrics, "holdout_metrics": self.holdout_metrics,
            "test_metrics": self.test_metrics,
            "learn_seconds": self.learn_seconds, "good_states": self.good_states,
            "owner": self.owner, "examples_learned": self.examples_learned,
            "examples_handled": self.examples_handled, "version": self.version,
            "over": self.over, "spec": self.spec, "serve": self.serve,
            "columns": self.columns,
        }

    @classmethod
    def from_state(cls, state: dict) -> ModelSet:
        # (a state saved before test rows or model graphs existed lacks their fields)
        if not isinstance(state, dict) or \
                not set(cls.__dataclass_fields__) - OPTIONAL_STATE <= set(state) <= \
                set(cls.__dataclass_fields__):
            raise ValueError("not a model set's state")
        models = state["models"]
        if not all(isinstance(m, Learner) for m in models.values()):
            raise ValueError("a model set's member is not a learner")
        if not all(isinstance(c, Combiner) for c in state["ensembles"].values()):
            raise ValueError("a model set's ensemble is not a combiner")
        if not isinstance(state["learned"], LearnedIds):
            raise ValueError("a model set's learned ids are not LearnedIds")
        if not isinstance(state.get("columns", ColumnSchema()), ColumnSchema):
            raise ValueError("a model set's columns are not a ColumnSchema")
        return cls(**state)

    def copy(self) -> ModelSet:
        return ModelSet.from_state(copy_state(self.to_state()))
