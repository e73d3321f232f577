"""Base for learners over hashed features: they hash a batch once and run a compiled kernel."""

from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Sequence

import numpy as np

from .base import Features, Learner
from .hashing import FeatureHasher, Rows


class HashedLearner(Learner):
    """Subclasses set ``self.hasher`` and implement ``progressive_rows`` and ``predict_rows``.

    State is saved sparsely: only the buckets the model touched, compressed.
    """

    hasher: FeatureHasher

    def progressive_rows(self, rows: Rows, y: np.ndarray, learn: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_rows(self, rows: Rows) -> np.ndarray:
        raise NotImplementedError

    # the protocol, through the row methods
    def predict_proba_one(self, x: Features) -> float:
        return float(self.predict_rows(self.hasher.transform([x]))[0])

    def learn_one(self, x: Features, y: int) -> None:
        self.progressive_rows(self.hasher.transform([x]), np.array([y], dtype=np.float64),
                              np.ones(1, dtype=np.bool_))

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

    def to_bytes(self) -> bytes:
        rows = np.flatnonzero(self._touched())
        arrays = {k: a[rows] for k, a in self._dense_state().items()}
        buf = io.BytesIO()
        np.savez(buf, __rows__=rows, **arrays)
        params = {k: getattr(self, k) for k in self._init_params()}
        extra = self._extra_state()
        return zlib.compress(pickle.dumps((type(self), params, extra, buf.getvalue()), 5), 1)

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        pass

    @staticmethod
    def from_bytes(data: bytes) -> HashedLearner:
        cls, params, extra, npz = pickle.loads(zlib.decompress(data))
        model = cls(**params)
        saved = np.load(io.BytesIO(npz))
        rows = saved["__rows__"]
        for k, a in model._dense_state().items():
            a[rows] = saved[k]
        model._load_extra_state(extra)
        return model


def _mask(learn, n: int) -> np.ndarray:
    if learn is None:
        return np.ones(n, dtype=np.bool_)
    return np.asarray(learn, dtype=np.bool_)
