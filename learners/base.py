"""The learner protocol. One small base class: learn one/many, predict one/many, state to bytes.

Features are flat dicts ``{name: value}``: strings, ints and booleans are categorical, floats are
numeric, ``None`` is missing. Labels are 0/1 (1 = clicked).

``progressive_many`` is what the stream calls: for each example, in order, predict, then learn
it with its weight ``learn[i]`` (0: held out, scored and not learned; a boolean mask reads as
weights 0 and 1). The prediction of an example is made by a model that has not seen its label,
so the returned probabilities are an honest progressive validation. An example of weight ``w``
counts as ``w`` examples: its loss, and so its update, is scaled by ``w``.

State is data (:mod:`learners.state`): every learner class is allowed in a state by being one,
and a learner's attributes (or its own ``to_state``, for the array-backed ones) are what a
checkpoint holds. Nothing is pickled.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .state import persistent

Features = dict


class Learner(ABC):
    """A binary classifier that learns online. Subclasses implement the ``_one`` methods and may
    override the ``_many`` ones with vectorised code that gives the same results.

    Outputs: a learner predicts one probability per example, named as its member in a model
    set (``name`` by default). A learner with several (heads sharing parameters) declares
    ``outputs``, their names; every caller goes through :meth:`predict_outputs` and
    :meth:`progressive_outputs`, which every learner has.
    """

    #: a short, stable name for metrics and tables
    name: str = "learner"
    #: the names of its outputs when it has several (None: one, named as the member)
    outputs: tuple[str, ...] | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        persistent(cls)  # a learner's state may hold it (learners.state)

    @abstractmethod
    def predict_proba_one(self, x: Features) -> float:
        """Probability of a click for one example."""

    @abstractmethod
    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        """Update the model with one labelled example of weight ``w`` (> 0)."""

    def predict_proba_many(self, X: Sequence[Features]) -> np.ndarray:
        return np.fromiter((self.predict_proba_one(x) for x in X), dtype=np.float64, count=len(X))

    def predict_request(self, shared: Features, items: Sequence[Features]) -> np.ndarray:
        """Probabilities of ``{**shared, **item}`` for each item: one request (user, context)
        and its candidates. Override where the shared part can be computed once."""
        return self.predict_proba_many([{**shared, **it} for it in items])

    def output_names(self, member: str | None = None) -> tuple[str, ...]:
        """What :meth:`predict_outputs` returns, for a member named ``member``."""
        return self.outputs if self.outputs is not None else (member or self.name,)

    def predict_outputs(self, X: Sequence[Features], member: str | None = None
                        ) -> dict[str, np.ndarray]:
        """Every output's probabilities of ``X``."""
        return {member or self.name: self.predict_proba_many(X)}

    def progressive_outputs(self, X: Sequence[Features], y: Sequence[int],
                            learn: Sequence[float] | None = None, member: str | None = None
                            ) -> dict[str, np.ndarray]:
        """Every output's predict-then-learn probabilities (see :meth:`progressive_many`)."""
        return {member or self.name: self.progressive_many(X, y, learn)}

    def learn_many(self, X: Sequence[Features], y: Sequence[int]) -> None:
        for x, yi in zip(X, y, strict=True):
            self.learn_one(x, int(yi))

    def progressive_many(self, X: Sequence[Features], y: Sequence[int],
                         learn: Sequence[float] | None = None) -> np.ndarray:
        """Predict each example, then learn it with weight ``learn[i]`` (0: not learned), in
        order."""
        out = np.empty(len(X), dtype=np.float64)
        for i, x in enumerate(X):
            out[i] = self.predict_proba_one(x)
            w = 1.0 if learn is None else float(learn[i])
            if w > 0:
                self.learn_one(x, int(y[i]), w)
        return out

    def clone(self) -> Learner:
        """A fresh, untrained learner with the same configuration (the constructor's args)."""
        params = {k: copy.deepcopy(getattr(self, k)) for k in self._init_params()}
        return type(self)(**params)

    @classmethod
    def _init_params(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._init_params())
        return f"{type(self).__name__}({args})"


class MiniBatchLearner(Learner):
    """A learner that learns in mini-batches: a batch is scored with the parameters as they
    are, then learned (its examples do not see each other's labels). Per-example checks of
    :mod:`learners.checks` do not apply to it."""

    @abstractmethod
    def flush(self) -> None:
        """Learn whatever is pending, even if less than a mini-batch."""


class Phased(ABC):
    """A learner that trains in phases (exported as ``aimass_training_phase``)."""

    phase: int


class Freezable(ABC):
    """A learner that scores faster from tables made once per version (a replica's model
    never learns). ``freeze`` makes them now; learning drops them (the forest makes them
    again at its next prediction; the hashed linear models score from their arrays until
    frozen again)."""

    _serving_only = False  # (what only learning reads was dropped: see _drop_for_serving)

    @abstractmethod
    def freeze(self) -> None:
        """Make the serving tables now (a snapshot's loader calls it, off the request path)."""

    def serve_only(self) -> None:
        """Freeze for good: a snapshot's member never learns, so a learner may drop what only
        learning reads (its state can no longer be saved, and learning raises
        :class:`ServingOnly`). By default it keeps everything."""
        self.freeze()

    def _drop_for_serving(self, names) -> None:
        """Drop the arrays ``names`` (each left empty, of its dtype): from now on learning or
        saving, which would read them, raises :class:`ServingOnly` (:meth:`_refuse`)."""
        self._serving_only = True
        for name in names:
            a = getattr(self, name)
            setattr(self, name, np.zeros((0, *a.shape[1:]), dtype=a.dtype))

    def _refuse(self) -> None:
        """Called before learning or saving: a learner that dropped its arrays cannot."""
        if self._serving_only:
            raise ServingOnly(f"{self.name}: a snapshot's member keeps only its serving tables")


class ServingOnly(RuntimeError):
    """A learner that kept only its serving tables was asked to learn or be saved."""
