"""Model sets by tenant (:class:`Trainer`), made on first sight from the configured factories:
the members (``AIMASS_MODELS``), the ensembles over them, the overfitting guard and the
exactly-once horizon. Kafka-free."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ensemble import build_combiner
from ensemble.base import Combiner
from learners import registry
from learners.base import Learner
from learners.dedup import LearnedIds
from learners.guard import OverfitGuard
from streams.contracts.events import TrainingExample
from streams.contracts.features import DEFAULT_CROSSES
from streams.training.model_set import BatchResult, ModelSet

ModelFactory = Callable[[], dict[str, Learner]]
EnsembleFactory = Callable[[], dict[str, Combiner]]


class Trainer:
    """Model sets by tenant, created on first sight from the factories."""

    def __init__(self, factory: ModelFactory, holdout_fraction: float = 0.0,
                 restored: dict[str, ModelSet] | None = None,
                 ensembles: EnsembleFactory | None = None,
                 guard: Callable[[], OverfitGuard] | None = None, rollback: bool = False,
                 learned: Callable[[], LearnedIds] = LearnedIds):
        self.factory = factory
        self.learned = learned
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
                guard=self.guard() if self.guard else None, rollback=self.rollback,
                learned=self.learned())
        return self.sets[tenant]

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


def make_trainer(settings, restored=None) -> Trainer:
    return Trainer(model_factory(settings), settings.holdout_fraction, restored,
                   ensembles=ensemble_factory(settings),
                   guard=lambda: OverfitGuard(settings.guard_gap, settings.guard_patience,
                                              settings.guard_tolerance),
                   rollback=settings.rollback,
                   learned=lambda: LearnedIds(settings.dedup_horizon, settings.dedup_capacity))
