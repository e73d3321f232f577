"""Numba kernels: the combiners' progressive pass over a batch, compiled (and cached on disk).

Each kernel walks the members' predictions ``P`` (n, m) in order and, for every example,
combines with the state learned from the examples before it, then learns from it with its
weight ``learn[i]`` (0: combined, not learned): :meth:`ensemble.base.Combiner.combine_progressive`
one example at a time, the same arithmetic, without a dozen numpy calls on arrays of a few
members per example (55 us an example for the four default combiners, most of a trainer's
time; tests/ensemble/test_kernels.py checks each against the example-by-example pass).

- Hedge: Freund & Schapire, "A decision-theoretic generalization of on-line learning and an
  application to boosting", JCSS 55(1), 1997; the losses discounted as in Herbster & Warmuth,
  "Tracking the best expert", Machine Learning 32(2), 1998.
- Stacking: Wolpert, "Stacked generalization", Neural Networks 5(2), 1992; its logistic
  meta-learner trained by AdaGrad (Duchi, Hazan & Singer, JMLR 12, 2011).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

EPS = 1e-6  # as ensemble.base
CLIP = 35.0
POLICIES = ("weighted", "average", "best", "abstain")  # vote's, by their index here


@njit(cache=True)
def _clipped(p: float) -> float:
    return min(max(p, EPS), 1.0 - EPS)


@njit(cache=True)
def _hedge_weights(losses, eta, out):
    """``out`` = softmax(-eta * (losses - min(losses)))."""
    lo = losses.min()
    total = 0.0
    for k in range(len(losses)):
        out[k] = math.exp(-eta * (losses[k] - lo))
        total += out[k]
    for k in range(len(losses)):
        out[k] /= total


@njit(cache=True)
def _hedge_learn(losses, p, y, w, decay):
    for k in range(len(losses)):
        q = _clipped(p[k])
        losses[k] = decay * losses[k] + w * -(y * math.log(q) + (1.0 - y) * math.log(1.0 - q))


@njit(cache=True)
def hedge_progressive(P, y, learn, losses, eta, decay, out):
    """The Hedge-weighted average of each row; ``losses`` (m) learned in place."""
    weights = np.empty(P.shape[1])
    for i in range(P.shape[0]):
        _hedge_weights(losses, eta, weights)
        s = 0.0
        for k in range(P.shape[1]):
            s += weights[k] * P[i, k]
        out[i] = s
        if learn[i] > 0:
            _hedge_learn(losses, P[i], y[i], learn[i], decay)


@njit(cache=True)
def stacking_progressive(P, y, learn, w, g2, lr, l2, out):
    """A logistic regression over the rows' logits (and a bias ``w[m]``), AdaGrad; ``w`` and
    ``g2`` (m + 1) learned in place."""
    m = P.shape[1]
    z = np.empty(m + 1)
    z[m] = 1.0
    for i in range(P.shape[0]):
        s = 0.0
        for k in range(m):
            q = _clipped(P[i, k])
            z[k] = math.log(q / (1.0 - q))
        for k in range(m + 1):
            s += w[k] * z[k]
        s = min(max(s, -CLIP), CLIP)
        out[i] = 1.0 / (1.0 + math.exp(-s))
        if learn[i] > 0:
            err = learn[i] * (out[i] - y[i])
            for k in range(m + 1):
                g = err * z[k] + l2 * w[k]
                g2[k] += g * g
                w[k] -= lr * g / math.sqrt(g2[k])


@njit(cache=True)
def vote_progressive(P, y, learn, losses, eta, decay, threshold, policy, out):
    """Majority vote, a conflict settled by ``policy`` (an index of :data:`POLICIES`), a
    Hedge over the members kept in step (``losses``, in place). Returns the conflicts."""
    m = P.shape[1]
    weights = np.empty(m)
    conflicts = 0
    for i in range(P.shape[0]):
        _hedge_weights(losses, eta, weights)
        yes = no = s_all = total = 0.0
        n_yes = 0
        for k in range(m):
            p = P[i, k]
            s_all += weights[k] * p
            total += p
            if p >= 0.5:
                yes += p
                n_yes += 1
            else:
                no += p
        share = n_yes / m
        if share >= threshold:
            out[i] = yes / n_yes
        elif 1 - share >= threshold:
            out[i] = no / (m - n_yes)
        else:
            conflicts += 1
            if policy == 0:
                out[i] = s_all
            elif policy == 1:
                out[i] = total / m
            elif policy == 2:
                out[i] = P[i, np.argmax(weights)]
            else:
                out[i] = 0.5
        if learn[i] > 0:
            _hedge_learn(losses, P[i], y[i], learn[i], decay)
    return conflicts
