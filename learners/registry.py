"""Learners by kind, so model sets are configuration: ``AIMASS_MODELS=ftrl,fm,...`` for every
tenant, or a tenant's own model graph (:mod:`streams.control.specs`), which names a kind and
overrides some of its parameters.

>>> sorted(KINDS["fm"].defaults)[:3]
['alpha', 'bits', 'init_std']
>>> build_kind("ftrl", {"alpha": 0.1}).alpha
0.1
>>> build_kind("ftrl", {"alfa": 0.1})
Traceback (most recent call last):
...
ValueError: unknown parameter 'alfa' of ftrl; known: alpha, beta, bits, crosses, l1, l2
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .base import Learner
from .fm import FactorizationMachine
from .forest import OnlineForest
from .ftrl import FTRLProximal
from .river_models import RiverAdPredictor, RiverFM, RiverHoeffdingTree, RiverLogisticRegression


def _deep(**params) -> Learner:
    from .deep.shared import SharedDeepCTR

    return SharedDeepCTR(**params)


def _deep_signature() -> set[str]:
    from .deep.shared import SharedDeepCTR

    return set(inspect.signature(SharedDeepCTR).parameters)


@dataclass(frozen=True)
class Kind:
    """A learner kind: how to make one, and the parameters the system gives it (chosen on
    the MovieLens click stream, ops/bench/learning.py); a spec overrides any of them."""

    make: Callable[..., Learner]
    defaults: dict = field(default_factory=dict)
    signature: Callable[[], set[str]] | None = None  # for a lazily imported class
    crosses: bool = True  # takes the system's feature crosses (where it has the parameter)

    def parameters(self) -> set[str]:
        if self.signature is not None:
            return self.signature()
        return set(inspect.signature(self.make).parameters)


KINDS: dict[str, Kind] = {
    "ftrl": Kind(FTRLProximal, {"alpha": 0.2, "beta": 1.0, "l1": 0.0, "l2": 1.0, "bits": 22}),
    "fm": Kind(FactorizationMachine, {"n_factors": 16, "lr": 0.05, "init_std": 0.01,
                                      "bits": 20, "alpha": 0.3, "l1": 0.0, "l2": 1.0,
                                      "seed": 7},
               # its factors model every pair: the crosses as tokens too made it overconfident
               # (MovieLens clicks, ops/bench/quality.py: log loss 0.6256 -> 0.5867 without)
               crosses=False),
    "river_logreg": Kind(RiverLogisticRegression, {"lr": 0.05}),
    "river_fm": Kind(RiverFM, {"n_factors": 8, "lr": 0.02, "seed": 7}),
    "adpredictor": Kind(RiverAdPredictor, {"beta": 3.0, "prior_probability": 0.55}),
    "river_ht": Kind(RiverHoeffdingTree, {"grace_period": 200, "seed": 7}),
    # the nonlinear member: an online random forest of histogram trees, compiled
    # 15 trees, not 10: better on each data set of ops/bench/quality.py (Bananas 0.2889 ->
    # 0.2865, Adult 0.3497 -> 0.3479), for about 15% of the default set's in-process rate
    "forest": Kind(OnlineForest, {"seed": 7, "n_trees": 15}),
    # DeepFM + DCN-v2 heads over one shared embedding table (outputs deepfm, dcnv2,
    # deep_joint); torch, on CUDA when present
    "deep": Kind(_deep, {"buckets": 2**18, "dim": 16, "hidden": (64, 32), "batch_size": 256,
                         "switch_after": 50_000, "device": "auto", "seed": 7},
                 signature=_deep_signature),
}

ALL = ("ftrl", "fm", "river_logreg", "river_fm", "adpredictor", "river_ht",
       "forest")  # online learners
DEEP = ("deep",)


def build_kind(kind: str, params: dict | None = None, crosses: Sequence = (),
               device: str = "auto") -> Learner:
    """A fresh learner of ``kind``, its defaults overridden by ``params``. ValueError names
    an unknown kind or parameter; the learner's own constructor checks the values."""
    if kind not in KINDS:
        raise ValueError(f"unknown learner kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    spec = KINDS[kind]
    known = spec.parameters()
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} of {kind}; known: "
                         f"{', '.join(sorted(known))}")
    args = dict(spec.defaults)
    if "crosses" in known and spec.crosses:
        args["crosses"] = crosses
    if "device" in known:
        args["device"] = device
    args.update(params or {})
    return spec.make(**args)


def build(names: Sequence[str], crosses: Sequence[tuple[str, str]] = (),
          device: str = "auto") -> dict[str, Learner]:
    """Fresh learners for ``names`` (each a kind, with the system's parameters), in order."""
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise ValueError(f"unknown learners {unknown}; known: {sorted(KINDS)}")
    return {n: build_kind(n, None, crosses, device) for n in names}
