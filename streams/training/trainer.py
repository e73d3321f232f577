"""Model sets by tenant (:class:`Trainer`), made on first sight: from the tenant's model graph
when it has one (:mod:`streams.control`), else from the configured default (``AIMASS_MODELS``,
``AIMASS_ENSEMBLES``); with the overfitting guard and the exactly-once horizon. A tenant whose
graph changes has its set rebuilt (:meth:`Trainer.sync_specs`), keeping what did not change.
Kafka-free."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from ensemble import build_combiner
from ensemble.base import Combiner
from learners import registry
from learners.base import Learner
from learners.dedup import LearnedIds
from learners.guard import OverfitGuard
from streams.contracts.events import TrainingExample
from streams.contracts.features import DEFAULT_CROSSES
from streams.control.apply import build_model_set, rebuild
from streams.control.specs import ModelSpec, default_spec, parse
from streams.training.model_set import BatchResult, ModelSet

ModelFactory = Callable[[], dict[str, Learner]]
EnsembleFactory = Callable[[], dict[str, Combiner]]


class Trainer:
    """Model sets by tenant, created on first sight from the factories."""

    def __init__(self, factory: ModelFactory, holdout_fraction: float = 0.0,
                 restored: dict[str, ModelSet] | None = None,
                 ensembles: EnsembleFactory | None = None,
                 guard: Callable[[], OverfitGuard] | None = None, rollback: bool = False,
                 learned: Callable[[], LearnedIds] = LearnedIds,
                 default: ModelSpec | None = None,
                 specs: Callable[[], dict] | None = None, device: str = "auto"):
        self.factory = factory
        self.default = default  # the spec the factories make (None: not a spec)
        self.specs = specs or dict  # tenant -> its SpecRecord, read when needed
        self.device = device
        self.learned = learned
        self.holdout_fraction = holdout_fraction
        self.ensembles = ensembles
        self.guard = guard
        self.rollback = rollback
        self.sets: dict[str, ModelSet] = dict(restored or {})

    def model_set(self, tenant: str) -> ModelSet:
        if tenant not in self.sets:
            rec = self.specs().get(tenant)
            common = dict(holdout_fraction=self.holdout_fraction,
                          guard=self.guard() if self.guard else None, rollback=self.rollback,
                          learned=self.learned())
            if rec is not None:
                self.sets[tenant] = build_model_set(tenant, rec.spec, DEFAULT_CROSSES,
                                                    self.device, **common)
            else:
                self.sets[tenant] = ModelSet(
                    tenant, self.factory(), ensembles=self.ensembles() if self.ensembles
                    else {}, **common)
        return self.sets[tenant]

    def sync_specs(self) -> dict[str, list[str]]:
        """Rebuild every set whose tenant's graph is not the one it was built from (a new
        spec, or back to the default): tenant -> the outputs made anew."""
        specs, changed = self.specs(), {}
        for tenant, ms in self.sets.items():
            rec = specs.get(tenant)
            wanted = rec.spec.encode().decode() if rec is not None else ""
            if ms.spec == wanted or (rec is None and self.default is None):
                continue
            old = parse(orjson.loads(ms.spec)) if ms.spec else self.default
            new = rec.spec if rec is not None else self.default
            changed[tenant] = rebuild(ms, old or ModelSpec({}), new, DEFAULT_CROSSES,
                                      self.device, default=rec is None)
        return changed

    def process(self, batch: Sequence[TrainingExample]) -> dict[str, BatchResult]:
        by_tenant: dict[str, list[TrainingExample]] = {}
        for ex in batch:
            by_tenant.setdefault(ex.tenant, []).append(ex)
        return {t: self.model_set(t).process(exs) for t, exs in by_tenant.items()}


def model_factory(settings):
    names = settings.model_names
    return lambda: registry.build(names, DEFAULT_CROSSES, settings.device)


def ensemble_factory(settings):
    names = settings.ensemble_names
    return lambda: {n: build_combiner(n, settings.vote_threshold, settings.vote_policy)
                    for n in names}


def settings_spec(settings) -> ModelSpec:
    """The default model graph: the environment variables'."""
    return default_spec(settings.model_names, settings.ensemble_names, settings.vote_threshold,
                        settings.vote_policy)


def make_trainer(settings, restored=None, specs: Callable[[], dict] | None = None) -> Trainer:
    return Trainer(model_factory(settings), settings.holdout_fraction, restored,
                   ensembles=ensemble_factory(settings),
                   guard=lambda: OverfitGuard(settings.guard_gap, settings.guard_patience,
                                              settings.guard_tolerance),
                   rollback=settings.rollback,
                   learned=lambda: LearnedIds(settings.dedup_horizon, settings.dedup_capacity),
                   default=settings_spec(settings), specs=specs, device=settings.device)


def warm_up(settings) -> ModelSet:
    """Load the compiled kernels a tenant's model set learns with (numba's on-disk cache, or
    compile them) before the first batch pays for them: four examples through a model set of
    the configured kinds and combiners (0.5 s from the cache here). Returns the set."""
    names = [n for n in settings.model_names if n != "deep"]  # torch warms up on its own
    ms = ModelSet("warm-up", registry.build(names, DEFAULT_CROSSES, "cpu"),
                  ensembles=ensemble_factory(settings)())
    x = {"u_user_id": "1", "a_ad_id": "1"}
    ms.process([TrainingExample(f"w{i}", 0.0, "warm-up", x, i % 2) for i in range(4)])
    return ms
