"""The compiled loops of :mod:`learners.forest`: per-tree node arrays, leaf histograms, the
Hoeffding split test, online bagging and tree replacement (see that module for the method and
its papers). Every function walks flat numpy arrays; nothing here allocates per example."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _rand(state):
    """xorshift64*: a uniform float in [0, 1), advancing ``state[0]``."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return float((x * np.uint64(2685821657736338717)) >> np.uint64(11)) / 9007199254740992.0


@njit(cache=True)
def _poisson(lam, state):
    """Knuth's method; lam is small (1 to 6)."""
    limit, k, p = math.exp(-lam), 0, _rand(state)
    while p > limit:
        k += 1
        p *= _rand(state)
    return k


@njit(cache=True)
def _leaf(feat, kind, thr, left, right, t, row):
    node = 0
    while feat[t, node] >= 0:
        b = row[feat[t, node]]
        if kind[t, node] == 0:
            go_left = b <= thr[t, node]
        else:
            go_left = b == thr[t, node]
        node = left[t, node] if go_left else right[t, node]
    return node


@njit(cache=True)
def _rate(t, node, pos, neg):
    """The leaf's Laplace-smoothed click rate."""
    return (pos[t, node] + 1.0) / (pos[t, node] + neg[t, node] + 2.0)


@njit(cache=True)
def _leaf_p(t, node, row, pos, neg, slot, hist, lf, lmc, lnb):
    """The leaf's click probability: its smoothed rate, or naive Bayes over its histograms
    when that has done better at this leaf so far (adaptive naive Bayes leaves, as in river's
    Hoeffding trees). Returns (p, p_majority, p_naive_bayes)."""
    pm = _rate(t, node, pos, neg)
    s = slot[t, node]
    if s < 0:
        return pm, pm, pm
    m = lf.shape[2]
    B = hist.shape[3]
    lp, ln = math.log(pm), math.log(1.0 - pm)
    cp, cn = 0.0, 0.0  # the leaf's class totals: every feature's histogram holds them all
    for bb in range(B):
        cp += hist[t, s, 0, bb, 0]
        cn += hist[t, s, 0, bb, 1]
    for j in range(m):
        b = row[lf[t, s, j]] if lf[t, s, j] < row.shape[0] else 0
        lp += math.log((hist[t, s, j, b, 0] + 0.5) / (cp + 0.5 * B))
        ln += math.log((hist[t, s, j, b, 1] + 0.5) / (cn + 0.5 * B))
    d = max(min(ln - lp, 30.0), -30.0)
    pn = 1.0 / (1.0 + math.exp(d))
    return (pn if lnb[t, node] < lmc[t, node] else pm), pm, pn


@njit(cache=True)
def forest_predict(rows, feat, kind, thr, left, right, pos, neg, slot, hist, lf, lmc, lnb, out):
    """Each row's mean leaf probability over the trees; learns nothing (serving)."""
    T = feat.shape[0]
    for i in range(rows.shape[0]):
        row = rows[i]
        tot = 0.0
        for t in range(T):
            node = _leaf(feat, kind, thr, left, right, t, row)
            if slot[t, node] < 0 or lnb[t, node] >= lmc[t, node]:  # naive Bayes not chosen
                tot += _rate(t, node, pos, neg)
            else:
                tot += _leaf_p(t, node, row, pos, neg, slot, hist, lf, lmc, lnb)[0]
        out[i] = tot / T


@njit(cache=True)
def _entropy(p, n):
    tot = p + n
    if tot <= 0:
        return 0.0
    e = 0.0
    for c in (p, n):
        if c > 0:
            q = c / tot
            e -= q * math.log2(q)
    return e


NO_SPLIT = -1.0e300  # a split with an empty side


@njit(cache=True)
def _split_gain(lp, ln, tot_p, tot_n, h0, tot):
    """Information gain of sending (lp, ln) left and the rest right; NO_SPLIT if a side is
    empty."""
    rp, rn = tot_p - lp, tot_n - ln
    if lp + ln <= 0 or rp + rn <= 0:
        return NO_SPLIT
    return h0 - ((lp + ln) * _entropy(lp, ln) + (rp + rn) * _entropy(rp, rn)) / tot


@njit(cache=True)
def _new_leaf(t, node, depth_v, pos0, neg0, feat, depth, pos, neg, slot, free, nfree,
              lf, n_cols, m, rng, lmc, lnb):
    feat[t, node] = -1
    lmc[t, node] = 0.0
    lnb[t, node] = 0.0
    depth[t, node] = depth_v
    pos[t, node] = pos0
    neg[t, node] = neg0
    if nfree[t] == 0:
        slot[t, node] = -1  # no histogram room: a leaf that never splits
        return
    nfree[t] -= 1
    s = free[t, nfree[t]]
    slot[t, node] = s
    # a random subset of the columns known now (without replacement when it can)
    for j in range(m):
        lf[t, s, j] = int(_rand(rng[t]) * n_cols) if n_cols > 0 else 0
    if n_cols >= m:
        for j in range(m):
            for i in range(j):
                if lf[t, s, j] == lf[t, s, i]:
                    lf[t, s, j] = (lf[t, s, j] + 1 + j) % n_cols


@njit(cache=True)
def _try_split(t, node, n_cols, bins, max_depth, delta, tau, min_gain, feat, kind, thr, left,
               right, depth, pos, neg, slot, free, nfree, hist, lf, nnodes, max_nodes, m, rng,
               lmc, lnb):
    s = slot[t, node]
    if s < 0 or depth[t, node] >= max_depth or nnodes[t] + 2 > max_nodes:
        return
    P, N = pos[t, node], neg[t, node]
    h0 = _entropy(P, N)
    if h0 <= 0.0:
        return
    best, second = 0.0, 0.0
    bf, bk, bt = -1, 0, 0
    blp, bln, btp, btn = 0.0, 0.0, 0.0, 0.0
    seen_n = 0.0
    for j in range(m):
        c = lf[t, s, j]
        tot_p, tot_n = 0.0, 0.0
        for b in range(bins + 1):
            tot_p += hist[t, s, j, b, 0]
            tot_n += hist[t, s, j, b, 1]
        tot = tot_p + tot_n
        if tot <= 0:
            continue
        seen_n = max(seen_n, tot)
        # candidates: numeric, bin <= b goes left (missing, bin 0, always left), for b in
        # 0..bins-1; then categorical, bin b against the rest, for b in 1..bins
        cum_p, cum_n = 0.0, 0.0
        for q in range(2 * bins):
            if q < bins:
                cum_p += hist[t, s, j, q, 0]
                cum_n += hist[t, s, j, q, 1]
                how, b, lp, ln = 0, q, cum_p, cum_n
            else:
                b = q - bins + 1
                how, lp, ln = 1, hist[t, s, j, b, 0], hist[t, s, j, b, 1]
            g = _split_gain(lp, ln, tot_p, tot_n, h0, tot)
            if g == NO_SPLIT:
                continue
            if g > best:
                second, best, bf, bk, bt, blp, bln = best, g, c, how, b, lp, ln
                btp, btn = tot_p, tot_n
            elif g > second:
                second = g
    if bf < 0 or best < min_gain:
        return
    eps = math.sqrt(math.log(1.0 / delta) / (2.0 * seen_n))  # entropy of two classes: R = 1
    if best - second <= eps and eps >= tau:
        return
    # the split: two new leaves start from the counts seen on their side
    li, ri = nnodes[t], nnodes[t] + 1
    nnodes[t] += 2
    feat[t, node], kind[t, node], thr[t, node] = bf, bk, bt
    left[t, node], right[t, node] = li, ri
    free[t, nfree[t]] = s  # the parent's histograms go back to the pool
    nfree[t] += 1
    for b in range(bins + 1):
        for j in range(m):
            hist[t, s, j, b, 0] = 0.0
            hist[t, s, j, b, 1] = 0.0
    d = depth[t, node] + 1
    _new_leaf(t, li, d, blp, bln, feat, depth, pos, neg, slot, free, nfree, lf, n_cols, m, rng,
              lmc, lnb)
    _new_leaf(t, ri, d, btp - blp, btn - bln, feat, depth, pos, neg, slot, free, nfree, lf,
              n_cols, m, rng, lmc, lnb)
    slot[t, node] = -1


@njit(cache=True)
def reset_tree(t, feat, depth, pos, neg, slot, free, nfree, hist, lf, nnodes, n_cols, m, rng,
                loss, seen, lmc, lnb):
    L = free.shape[1]
    for i in range(L):
        free[t, i] = L - 1 - i
    nfree[t] = L
    hist[t, :, :, :, :] = 0.0
    nnodes[t] = 1
    _new_leaf(t, 0, 0, 0.0, 0.0, feat, depth, pos, neg, slot, free, nfree, lf, n_cols, m, rng,
              lmc, lnb)
    loss[t] = 0.0
    seen[t] = 0.0


@njit(cache=True)
def forest_progressive(rows, y, learn, do_learn, n_cols, bins, max_depth, grace, delta, tau,
                       min_gain, lam, decay, drift_ratio, feat, kind, thr, left, right, depth,
                       pos, neg, slot, free, nfree, hist, lf, nnodes, since, loss, seen, rng,
                       lmc, lnb, out):
    """Predict each row with every tree, then (if ``do_learn``) learn it with weight
    ``learn[i]`` (0: not learned): a tree that draws it k times (online bagging) counts it
    as k * ``learn[i]`` examples."""
    T = feat.shape[0]
    m = lf.shape[2]
    max_nodes = feat.shape[1]
    ptree = np.empty(T)
    for i in range(rows.shape[0]):
        row = rows[i]
        tot = 0.0
        for t in range(T):
            node = _leaf(feat, kind, thr, left, right, t, row)
            ptree[t], _, _ = _leaf_p(t, node, row, pos, neg, slot, hist, lf, lmc, lnb)
            tot += ptree[t]
        out[i] = tot / T
        wi = learn[i]
        if not (do_learn and wi > 0):
            continue
        yi = y[i]
        for t in range(T):  # each tree's own discounted loss, for the drift check
            q = min(max(ptree[t], 1e-6), 1 - 1e-6)
            lt = -math.log(q) if yi > 0.5 else -math.log(1 - q)
            loss[t] = decay * loss[t] + wi * lt
            seen[t] = decay * seen[t] + wi
        for t in range(T):
            k = _poisson(lam, rng[t])
            if k == 0:
                continue
            node = _leaf(feat, kind, thr, left, right, t, row)
            w = k * wi
            _, pm, pn = _leaf_p(t, node, row, pos, neg, slot, hist, lf, lmc, lnb)
            pm, pn = min(max(pm, 1e-6), 1 - 1e-6), min(max(pn, 1e-6), 1 - 1e-6)
            lmc[t, node] += wi * (-math.log(pm) if yi > 0.5 else -math.log(1 - pm))
            lnb[t, node] += wi * (-math.log(pn) if yi > 0.5 else -math.log(1 - pn))
            if yi > 0.5:
                pos[t, node] += w
            else:
                neg[t, node] += w
            s = slot[t, node]
            if s < 0:
                continue
            for j in range(m):
                c = lf[t, s, j]
                b = row[c] if c < row.shape[0] else 0
                hist[t, s, j, b, 0 if yi > 0.5 else 1] += w
            since[t, node] += w
            if since[t, node] >= grace:
                since[t, node] = 0.0
                _try_split(t, node, n_cols, bins, max_depth, delta, tau, min_gain, feat, kind,
                           thr, left, right, depth, pos, neg, slot, free, nfree, hist, lf,
                           nnodes, max_nodes, m, rng, lmc, lnb)
        if drift_ratio > 0 and T > 2 and i % 500 == 0:
            mean = np.empty(T)
            for t in range(T):
                mean[t] = loss[t] / max(seen[t], 1e-9)
            med = np.median(mean)
            worst = int(np.argmax(mean))
            if seen[worst] > 5 * grace and mean[worst] > drift_ratio * med:
                reset_tree(worst, feat, depth, pos, neg, slot, free, nfree, hist, lf, nnodes,
                            n_cols, m, rng, loss, seen, lmc, lnb)
