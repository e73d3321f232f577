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

# river is imported here, once, on the importing thread: importing it lazily from two threads
# at once (a warm-up thread and a snapshot-loading one) races river's circular imports into
# "partially initialized module" errors.
import math

from river import facto, linear_model, optim, tree

from .base import Features, Learner
from .scaling import RunningScaler
from .state import persistent


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


def _numeric(x: Features) -> list[str]:
    return [k for k, v in x.items() if isinstance(v, float)]


class RiverLearner(Learner):
    """Wraps a river classifier; ``_x`` turns our features into what the model takes. A
    subclass that sets ``scaler`` (:mod:`learners.scaling`) has its numeric features
    standardised on the stream, by the values learned before."""

    scaler: RunningScaler | None = None  # (also what a state saved before scaling holds)

    def __init__(self, model, one_hot: bool = True):
        self.model = model
        self.one_hot = one_hot

    def _x(self, x: Features) -> dict:
        if not self.one_hot:
            return {k: v for k, v in x.items() if v is not None}
        if self.scaler is None:
            return active_one_hot(x)
        return self.scaler.transform(active_one_hot(x), _numeric(x))

    def predict_proba_one(self, x: Features) -> float:
        return float(self.model.predict_proba_one(self._x(x)).get(True, 0.5))

    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        if w == 1.0:
            self.model.learn_one(self._x(x), bool(y))
        else:
            self.model.learn_one(self._x(x), bool(y), w=w)
        if self.scaler is not None:
            self.scaler.learn(x, _numeric(x))

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
    >>> round(log_loss([int(y) for _, y in data], p), 3)  # 0.339 on the raw values
    0.26
    """

    name = "river_logreg"

    def __init__(self, lr: float = 0.05, l2: float = 0.0):
        self.lr, self.l2 = lr, l2
        super().__init__(linear_model.LogisticRegression(optimizer=optim.SGD(lr), l2=l2))
        # numbers standardised, as RiverFM's: SGD on raw magnitudes (a salary in the tens of
        # thousands) diverged (river's Agrawal stream: log loss 13); a state saved before has
        # no scaler and keeps its raw values
        self.scaler = RunningScaler()

    def clone(self) -> RiverLogisticRegression:
        return RiverLogisticRegression(self.lr, self.l2)


class RiverFM(RiverLearner):
    """river ``facto.FMClassifier`` on the active one-hot set (see the module doc), numeric
    features standardised on the stream (:mod:`learners.scaling`): the FM multiplies pairs of
    values, and raw magnitudes (a price in cents beside a 0/1 token) would overflow it."""

    name = "river_fm"

    def __init__(self, n_factors: int = 8, lr: float = 0.02, seed: int = 0):
        self.n_factors, self.lr, self.seed = n_factors, lr, seed
        super().__init__(facto.FMClassifier(n_factors=n_factors, weight_optimizer=optim.SGD(lr),
                                            latent_optimizer=optim.SGD(lr), seed=seed))
        self.scaler = RunningScaler()

    def predict_proba_one(self, x) -> float:
        # river's FM draws random factors for a feature it has not seen, even in prediction:
        # that would let held-out examples change the model. Unseen features carry nothing yet.
        latents = self.model.latents
        seen = {k: v for k, v in self._x(x).items() if k in latents}
        return float(self.model.predict_proba_one(seen).get(True, 0.5))

    def clone(self) -> RiverFM:
        return RiverFM(self.n_factors, self.lr, self.seed)


class RiverHoeffdingTree(RiverLearner):
    """river ``HoeffdingTreeClassifier`` on raw features: strings are nominal splits, leaves
    adaptive naive Bayes.

    (Not the adaptive variant: its per-node drift detectors are compiled objects whose state
    cannot be written as data, see :mod:`learners.state`.) A pure leaf predicts 0 or 1, and
    one confident miss then costs a log loss of 35: probabilities are kept within
    ``[min_proba, 1 - min_proba]``."""

    name = "river_ht"

    def __init__(self, grace_period: int = 200, min_proba: float = 0.02, seed: int = 0):
        self.grace_period, self.min_proba, self.seed = grace_period, min_proba, seed
        super().__init__(tree.HoeffdingTreeClassifier(grace_period=grace_period),
                         one_hot=False)

    def predict_proba_one(self, x) -> float:
        p = super().predict_proba_one(x)
        return min(max(p, self.min_proba), 1.0 - self.min_proba)

    def clone(self) -> RiverHoeffdingTree:
        return RiverHoeffdingTree(self.grace_period, self.min_proba, self.seed)


@persistent
class WeightedAdPredictor(linear_model.AdPredictor):
    """river's ``AdPredictor`` with example weights: an example of weight ``w`` moves each
    weight's mean ``w`` times as far and shrinks its variance as ``w`` updates with the same
    message would, ``(1 - r) ** w`` (Graepel et al. 2010, eq. 6 and 7, applied ``w`` times with
    the message held). Weight 1 is river's update exactly."""

    def learn_one(self, x, y, w: float = 1.0):
        if w == 1.0:
            return super().learn_one(x, y)
        features = linear_model.ad_predictor._active(x)
        self._init_bias(len(features))
        sign = 1.0 if y else -1.0
        total_mean, total_variance = self._total_mean_variance(features)
        std = math.sqrt(total_variance)
        v, wf = linear_model.ad_predictor._v_w(sign * total_mean / std)
        for f in (linear_model.ad_predictor._BIAS_KEY, *features):
            mean = self.means.get(f, 0.0)
            variance = self.variances.get(f, 1.0)
            mean = mean + w * sign * variance / std * v
            variance = variance * (1.0 - variance / total_variance * wf) ** w
            self.means[f], self.variances[f] = self._apply_dynamics(mean, variance)

    @classmethod
    def of(cls, model: linear_model.AdPredictor) -> WeightedAdPredictor:
        """The same model, weighted (a state saved before weights holds river's own)."""
        weighted = cls.__new__(cls)
        weighted.__dict__.update(model.__dict__)
        return weighted


class RiverAdPredictor(RiverLearner):
    """river ``AdPredictor`` (Bayesian online probit regression, Graepel et al. 2010)."""

    name = "adpredictor"

    def __init__(self, beta: float = 0.1, prior_probability: float = 0.5, epsilon: float = 0.0):
        self.beta, self.prior_probability, self.epsilon = beta, prior_probability, epsilon
        super().__init__(WeightedAdPredictor(beta=beta, prior_probability=prior_probability,
                                             epsilon=epsilon))

    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        if not isinstance(self.model, WeightedAdPredictor):
            self.model = WeightedAdPredictor.of(self.model)
        super().learn_one(x, y, w)

    def clone(self) -> RiverAdPredictor:
        return RiverAdPredictor(self.beta, self.prior_probability, self.epsilon)
