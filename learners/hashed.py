"""Base for learners over hashed features: they hash a batch once and run a compiled kernel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._frozen_tables import FrozenLinear
from .base import Features, Freezable, Learner
from .hashing import FeatureHasher, Rows
from .numeric import BucketScaler
from .state import Persistent, ReadForServing


class HashedLearner(Learner, Persistent):
    """Subclasses set ``self.hasher`` and ``self.scaler`` and implement ``progressive_rows``
    and ``predict_rows``, passing the rows through ``self.scaler`` (numeric values
    standardised on the stream, :mod:`learners.numeric`) before their kernel.

    State is saved sparsely: the constructor's parameters, the buckets the model touched and
    their rows of each array (:meth:`to_state`), and the scaler's statistics.
    """

    hasher: FeatureHasher
    scaler: BucketScaler

    def progressive_rows(self, rows: Rows, y: np.ndarray, learn: np.ndarray) -> np.ndarray:
        """Predict then learn each row; ``learn[i]``: its weight (0: scored, not learned)."""
        raise NotImplementedError

    def predict_rows(self, rows: Rows) -> np.ndarray:
        raise NotImplementedError

    # the protocol, through the row methods
    def predict_proba_one(self, x: Features) -> float:
        return float(self.predict_rows(self.hasher.transform([x]))[0])

    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        self.progressive_rows(self.hasher.transform([x]), np.array([y], dtype=np.float64),
                              np.array([w], dtype=np.float64))

    def predict_proba_many(self, X: Sequence[Features]) -> np.ndarray:
        return self.predict_rows(self.hasher.transform(X))

    def predict_request(self, shared: Features, items: Sequence[Features]) -> np.ndarray:
        return self.predict_rows(self.hasher.transform_request(shared, items))

    def learn_many(self, X: Sequence[Features], y: Sequence[int]) -> None:
        self.progressive_many(X, y)

    def progressive_many(self, X, y, learn=None) -> np.ndarray:
        rows = self.hasher.transform(X)
        return self.progressive_rows(rows, np.asarray(y, dtype=np.float64), _mask(learn, len(X)))

    # sparse state
    def _dense_state(self) -> dict[str, np.ndarray]:
        """Arrays indexed by bucket on axis 0; only the rows in ``_touched()`` are saved."""
        raise NotImplementedError

    def _touched(self) -> np.ndarray:
        raise NotImplementedError

    def to_state(self) -> dict:
        rows = np.flatnonzero(self._touched())
        return {"params": {k: getattr(self, k) for k in self._init_params()}, "rows": rows,
                "arrays": {k: a[rows] for k, a in self._dense_state().items()},
                "extra": self._extra_state()}

    def _extra_state(self) -> dict:
        return {"scaler": self.scaler}

    def _load_extra_state(self, extra: dict) -> None:
        scaler = extra.get("scaler")  # (a state saved before numeric scaling has none)
        if scaler is not None and not isinstance(scaler, BucketScaler):
            raise ValueError(f"{type(self).__name__}: the scaler's state is not a BucketScaler")
        self.scaler = scaler if scaler is not None else BucketScaler()

    @classmethod
    def from_state(cls, state: dict) -> HashedLearner:
        model = cls(**state["params"])
        rows, saved = model._saved_rows(state)
        for k, a in model._dense_state().items():
            a[rows] = saved[k]
        model._load_extra_state(state["extra"])
        return model

    def _saved_rows(self, state: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The saved buckets and their rows of each array, checked against this model's."""
        rows = np.asarray(state["rows"], dtype=np.int64)
        dense = self._dense_state()
        name = type(self).__name__
        if set(state["arrays"]) != set(dense):
            raise ValueError(f"{name} state has arrays {sorted(state['arrays'])}, "
                             f"expected {sorted(dense)}")
        if len(rows) and (rows.min() < 0 or rows.max() >= self.hasher.size):
            raise ValueError("bucket index out of range")
        if np.any(np.diff(rows) <= 0):  # (to_state saves them so: one row a bucket)
            raise ValueError("bucket indexes not strictly increasing")
        saved = {}
        for k, a in dense.items():
            saved[k] = np.asarray(state["arrays"][k], dtype=a.dtype)
            if saved[k].shape != (len(rows), *a.shape[1:]):
                raise ValueError(f"{name}.{k}: shape {saved[k].shape} does not fit")
        return rows, saved


class FreezableHashed(HashedLearner, Freezable, ReadForServing):
    """A hashed model a replica scores from compact tables of the buckets it touched
    (:mod:`learners._frozen_tables`). Subclasses call :meth:`_learning` before their arrays
    change, score from their arrays in ``_predict_arrays``, name the arrays indexed by bucket
    in ``BUCKET_ARRAYS`` (what :meth:`serve_only` drops) and those the tables are made of in
    ``TABLE_ARRAYS``, and make the tables in ``_tables`` from those arrays' rows of the
    buckets ``_in_tables`` picks.

    The tables are made from the arrays (:meth:`freeze`) or, for a snapshot a replica reads,
    straight from the saved rows (:meth:`from_serving_state`): the same function of the same
    rows, so the same tables, without scattering the rows into arrays of every bucket first
    (64 MB for FTRL, 288 MB for the FM by default) only to drop them."""

    BUCKET_ARRAYS: tuple[str, ...] = ()
    TABLE_ARRAYS: tuple[str, ...] = ()
    _frozen: FrozenLinear | None = None  # serving tables (learning drops them)

    def _predict_arrays(self, rows: Rows) -> np.ndarray:
        raise NotImplementedError

    def _in_tables(self, a: dict[str, np.ndarray]) -> np.ndarray:
        """Which of the rows of ``a`` (``TABLE_ARRAYS`` by name) the tables keep."""
        raise NotImplementedError

    def _tables(self, buckets: np.ndarray, a: dict[str, np.ndarray]) -> FrozenLinear:
        """The tables of ``buckets``, ``a`` holding their rows of ``TABLE_ARRAYS``."""
        raise NotImplementedError

    def _table_arrays(self, saved: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``TABLE_ARRAYS``' rows of the saved buckets, from the saved arrays (what loading
        them into the bucket arrays, then ``_load_extra_state``, would give there)."""
        return saved

    def freeze(self) -> None:
        if self._frozen is None:
            b = np.flatnonzero(self._in_tables({k: getattr(self, k) for k in self.TABLE_ARRAYS}))
            self._frozen = self._tables(b, {k: getattr(self, k)[b] for k in self.TABLE_ARRAYS})

    @classmethod
    def from_serving_state(cls, state: dict) -> FreezableHashed:
        model = cls(**state["params"])  # (its bucket arrays are allocated, never written)
        rows, saved = model._saved_rows(state)
        model._load_extra_state(state["extra"])
        a = model._table_arrays(saved)
        keep = model._in_tables(a)
        model._frozen = model._tables(rows[keep], {k: a[k][keep] for k in cls.TABLE_ARRAYS})
        model._drop_for_serving(cls.BUCKET_ARRAYS)
        return model

    def predict_rows(self, rows: Rows) -> np.ndarray:
        rows = self.scaler.transform(rows)
        if self._frozen is not None:
            return self._frozen.predict(rows.indptr, rows.indices, rows.values)
        return self._predict_arrays(rows)

    def _learning(self) -> None:
        """The arrays are about to change: the tables go (a serving-only model refuses)."""
        self._refuse()
        self._frozen = None

    def serve_only(self) -> None:
        """Freeze, then drop the bucket arrays: the tables hold all that scoring reads."""
        self.freeze()
        self._drop_for_serving(self.BUCKET_ARRAYS)

    def to_state(self) -> dict:
        self._refuse()
        return super().to_state()


def _mask(learn, n: int) -> np.ndarray:
    """Each example's learning weight, as the kernels take it (0: scored, not learned)."""
    if learn is None:
        return np.ones(n, dtype=np.float64)
    return np.asarray(learn, dtype=np.float64)
