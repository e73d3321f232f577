"""Learners by name, so model sets are configuration (``AIMASS_MODELS=ftrl,fm,...``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import Learner
from .fm import FactorizationMachine
from .forest import OnlineForest
from .ftrl import FTRLProximal
from .river_models import RiverAdPredictor, RiverFM, RiverHoeffdingTree, RiverLogisticRegression


def _deep(device: str) -> Learner:
    from .deep.shared import SharedDeepCTR

    return SharedDeepCTR(buckets=2**18, dim=16, hidden=(64, 32), batch_size=256,
                         switch_after=50_000, device=device, seed=7)


def _factories(crosses: Sequence[tuple[str, str]],
               device: str) -> dict[str, Callable[[], Learner]]:
    return {
        # hyperparameters chosen on the MovieLens click stream (ops/bench/learning.py)
        "ftrl": lambda: FTRLProximal(alpha=0.2, beta=1.0, l1=0.0, l2=1.0, bits=22,
                                     crosses=crosses),
        "fm": lambda: FactorizationMachine(n_factors=16, lr=0.05, init_std=0.01, bits=20,
                                           alpha=0.3, l1=0.0, l2=1.0, seed=7),
        "river_logreg": lambda: RiverLogisticRegression(lr=0.05),
        "river_fm": lambda: RiverFM(n_factors=8, lr=0.02, seed=7),
        "adpredictor": lambda: RiverAdPredictor(beta=3.0, prior_probability=0.55),
        "river_ht": lambda: RiverHoeffdingTree(grace_period=200, seed=7),
        # the nonlinear member: an online random forest of histogram trees, compiled
        "forest": lambda: OnlineForest(seed=7),
        # DeepFM + DCN-v2 heads over one shared embedding table (outputs deepfm, dcnv2,
        # deep_joint); torch, on CUDA when present
        "deep": lambda: _deep(device),
    }


ALL = ("ftrl", "fm", "river_logreg", "river_fm", "adpredictor", "river_ht",
       "forest")  # online learners
DEEP = ("deep",)


def build(names: Sequence[str], crosses: Sequence[tuple[str, str]] = (),
          device: str = "auto") -> dict[str, Learner]:
    """Fresh learners for ``names``, in that order."""
    factories = _factories(crosses, device)
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown learners {unknown}; known: {sorted(factories)}")
    return {n: factories[n]() for n in names}
