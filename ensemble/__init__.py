"""Ensembles of learners: average, weighted average (Hedge), vote, stacking.

A :class:`~ensemble.base.Combiner` works on the members' predict-before-learn outputs;
:class:`Ensemble` wraps members and a combiner into a learner of its own.
"""

from __future__ import annotations

from .average import Average
from .base import Combiner
from .ensemble import Ensemble, build_combiner
from .stacking import Stacking
from .vote import Vote
from .weighted import Hedge

__all__ = ["Average", "Combiner", "Ensemble", "Hedge", "Stacking", "Vote", "build_combiner"]
