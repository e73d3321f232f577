"""river models behind our learner protocol.

river's classifiers take numeric features; ours are mostly categorical. We one-hot encode only
the *active* categories (``{"gender=F": 1}``). river's ``preprocessing.OneHotEncoder()`` with its
default ``drop_zeros=False`` instead emits every category it has ever seen, with 0 for the
absent ones: on MovieLens that is 865 keys after 2,000 rows, and a factorisation machine then
computes every pair of them for every example (13 rows/s measured here). Fed the sparse active
set, river's ``facto.FMClassifier`` runs at about 5,000 rows/s. That is the whole fix. The
same holds for ``OneHotEncoder() | LogisticRegression``: 3,285 rows/s measured on the first 5,000
MovieLens examples, against 80k rows/s on the active set (ops/bench/learning.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Features, Learner


def active_one_hot(x: Features) -> dict[str, float]:
    """``{"gender": "F", "score": 0.5}`` -> ``{"gender=F": 1.0, "score": 0.5}``; None dropped."""
    out = {}
    for k, v in x.items():
        if v is None:
            continue
        if isinstance(v, float):
            out[k] = v
        else:
            out[f"{k}={v}"] = 1.0
    return out


def request_tokens(shared: Features, items: Sequence[Features]) -> tuple | None:
    """The active one-hot tokens of a request's shared part and of each item, or None when an
    item overrides a shared feature (then the merged dicts are the way)."""
    if any(shared.keys() & it.keys() for it in items):
        return None
    return active_one_hot(shared), [active_one_hot(it) for it in items]


class RiverLearner(Learner):
    """Wraps a river classifier; ``encode`` turns our features into what the model takes."""

    def __init__(self, model, one_hot: bool = True):
        self.model = model
        self.one_hot = one_hot

    def _x(self, x: Features) -> dict:
        return active_one_hot(x) if self.one_hot else {k: v for k, v in x.items() if v is not None}

    def predict_proba_one(self, x: Features) -> float:
        return float(self.model.predict_proba_one(self._x(x)).get(True, 0.5))

    def learn_one(self, x: Features, y: int) -> None:
        self.model.learn_one(self._x(x), bool(y))

    def predict_request(self, shared: Features, items: Sequence[Features],
                        tokens: tuple | None = None) -> np.ndarray:
        """``tokens``: :func:`request_tokens` of the request, when several models share them."""
        if self.one_hot and hasattr(self, "predict_tokens"):
            tokens = tokens if tokens is not None else request_tokens(shared, items)
            if tokens is not None:
                p = self.predict_tokens(*tokens)
                if p is not None:
                    return p
        return super().predict_request(shared, items)

    def clone(self) -> RiverLearner:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.model = self.model.clone()
        return clone


class RiverLogisticRegression(RiverLearner):
    """river ``LogisticRegression`` with SGD on active one-hot features.

    >>> from learners.metrics import log_loss
    >>> from river import datasets
    >>> data = list(datasets.Phishing())
    >>> model = RiverLogisticRegression(lr=0.1)
    >>> p = model.progressive_many([x for x, _ in data], [int(y) for _, y in data])
    >>> round(log_loss([int(y) for _, y in data], p), 3)
    0.339
    """

    name = "river_logreg"

    def __init__(self, lr: float = 0.05, l2: float = 0.0):
        from river import linear_model, optim

        self.lr, self.l2 = lr, l2
        super().__init__(linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2))

    def clone(self) -> RiverLogisticRegression:
        return RiverLogisticRegression(self.lr, self.l2)

    def predict_tokens(self, s_tok: dict, item_toks: list[dict]) -> np.ndarray:
        """The shared part of the dot product once, then each candidate's own tokens; the same
        probabilities as river's ``predict_proba_one`` (its sigmoid: 0 and 1 beyond +-30)."""
        w = self.model._weights
        base = self.model.intercept + sum(w.get(k, 0.0) * v for k, v in s_tok.items())
        z = np.fromiter((base + sum(w.get(k, 0.0) * v for k, v in t.items()) for t in item_toks),
                        dtype=np.float64, count=len(item_toks))
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
        p[z < -30] = 0.0
        p[z > 30] = 1.0
        return p


class RiverFM(RiverLearner):
    """river ``facto.FMClassifier`` on the active one-hot set (see the module doc)."""

    name = "river_fm"

    def __init__(self, n_factors: int = 8, lr: float = 0.02, seed: int = 0):
        from river import facto, optim

        self.n_factors, self.lr, self.seed = n_factors, lr, seed
        super().__init__(facto.FMClassifier(n_factors=n_factors, weight_optimizer=optim.SGD(lr),
                                            latent_optimizer=optim.SGD(lr), seed=seed))

    def predict_proba_one(self, x) -> float:
        # river's FM draws random factors for a feature it has not seen, even in prediction:
        # that would let held-out examples change the model. Unseen features carry nothing yet.
        latents = self.model.latents
        seen = {k: v for k, v in active_one_hot(x).items() if k in latents}
        return float(self.model.predict_proba_one(seen).get(True, 0.5))

    def clone(self) -> RiverFM:
        return RiverFM(self.n_factors, self.lr, self.seed)


class RiverHoeffdingTree(RiverLearner):
    """river ``HoeffdingAdaptiveTreeClassifier`` on raw features: strings are nominal splits.

    Its leaves predict class frequencies, which are 0 or 1 in a pure leaf (and at the very
    start); one confident miss then costs a log loss of 35. Probabilities are kept within
    ``[min_proba, 1 - min_proba]``."""

    name = "river_hat"

    def __init__(self, grace_period: int = 200, min_proba: float = 0.02, seed: int = 0):
        from river import tree

        self.grace_period, self.min_proba, self.seed = grace_period, min_proba, seed
        super().__init__(tree.HoeffdingAdaptiveTreeClassifier(
            grace_period=grace_period, leaf_prediction="mc", seed=seed), one_hot=False)

    def predict_proba_one(self, x) -> float:
        p = super().predict_proba_one(x)
        return min(max(p, self.min_proba), 1.0 - self.min_proba)

    def clone(self) -> RiverHoeffdingTree:
        return RiverHoeffdingTree(self.grace_period, self.min_proba, self.seed)


class RiverAdPredictor(RiverLearner):
    """river ``AdPredictor`` (Bayesian online probit regression, Graepel et al. 2010)."""

    name = "adpredictor"

    def __init__(self, beta: float = 0.1, prior_probability: float = 0.5, epsilon: float = 0.0):
        from river import linear_model

        self.beta, self.prior_probability, self.epsilon = beta, prior_probability, epsilon
        super().__init__(linear_model.AdPredictor(beta=beta, prior_probability=prior_probability,
                                                  epsilon=epsilon))

    def clone(self) -> RiverAdPredictor:
        return RiverAdPredictor(self.beta, self.prior_probability, self.epsilon)

    def predict_tokens(self, s_tok: dict, item_toks: list[dict]) -> np.ndarray | None:
        """The shared part of the total mean and variance once, then each candidate's own
        active features; the same probit as river's ``predict_proba_one``."""
        from river.linear_model.ad_predictor import _BIAS_KEY
        from scipy.special import ndtr

        means, variances = self.model.means, self.model.variances
        if _BIAS_KEY not in means:  # river sets the bias on first use: its own path
            return None
        active = [f for f, v in s_tok.items() if v]
        mean0 = means[_BIAS_KEY] + sum(means.get(f, 0.0) for f in active)
        var0 = variances[_BIAS_KEY] + self.model.beta ** 2 + sum(variances.get(f, 1.0)
                                                                 for f in active)
        n = len(item_toks)
        mean = np.fromiter((mean0 + sum(means.get(f, 0.0) for f, v in t.items() if v)
                            for t in item_toks), dtype=np.float64, count=n)
        var = np.fromiter((var0 + sum(variances.get(f, 1.0) for f, v in t.items() if v)
                           for t in item_toks), dtype=np.float64, count=n)
        return np.clip(ndtr(mean / np.sqrt(var)), 1e-12, 1.0 - 1e-12)
