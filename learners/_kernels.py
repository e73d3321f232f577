"""Numba kernels: the per-example loops of the hashed learners, compiled (and cached on disk).

Each kernel walks a CSR batch in order and, for every example, predicts and then updates with
the example's weight ``learn[i]`` (0: scored, not learned), so results do not depend on how the
stream was cut into batches. A weight scales the example's loss, and so its gradient: weight 2
counts as the example seen twice in one step (importance weights, as in VW).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

CLIP = 35.0


@njit(cache=True)
def _sigmoid(z: float) -> float:
    if z > CLIP:
        z = CLIP
    elif z < -CLIP:
        z = -CLIP
    return 1.0 / (1.0 + math.exp(-z))


@njit(cache=True)
def _ftrl_weight(z: float, n: float, alpha: float, beta: float, l1: float, l2: float) -> float:
    if abs(z) <= l1:
        return 0.0
    sign = 1.0 if z > 0 else -1.0
    return -(z - sign * l1) / ((beta + math.sqrt(n)) / alpha + l2)


@njit(cache=True)
def _ftrl_update(z, n, k, gi, w_k, alpha):
    """One coordinate's FTRL-Proximal step for gradient ``gi`` at weight ``w_k``."""
    sigma = (math.sqrt(n[k] + gi * gi) - math.sqrt(n[k])) / alpha
    z[k] += gi - sigma * w_k
    n[k] += gi * gi


@njit(cache=True)
def ftrl_progressive(indptr, idx, val, y, learn, z, n, alpha, beta, l1, l2, out):
    """FTRL-Proximal (McMahan et al. 2013, Algorithm 1), predict-then-learn per example."""
    w = np.empty(256, dtype=np.float64)
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1]
        if e - s > w.shape[0]:
            w = np.empty(2 * (e - s), dtype=np.float64)
        wx = 0.0
        for j in range(s, e):
            k = idx[j]
            w[j - s] = _ftrl_weight(z[k], n[k], alpha, beta, l1, l2)
            wx += w[j - s] * val[j]
        p = _sigmoid(wx)
        out[i] = p
        if learn[i] > 0:
            g = (p - y[i]) * learn[i]
            for j in range(s, e):
                _ftrl_update(z, n, idx[j], g * val[j], w[j - s], alpha)


@njit(cache=True)
def shared_prefix(indptr, idx, val):
    """How many entries every row starts with alike (bucket and value): a request's rows all
    begin with the bias and its user's and context's tokens. Predictions sum those once; the
    sums are made in the same order as row by row, so they are the same to the bit."""
    n = len(indptr) - 1
    if n == 0:
        return 0
    s0 = indptr[0]
    p = indptr[1] - s0
    for i in range(1, n):
        s = indptr[i]
        m = min(p, indptr[i + 1] - s)
        q = 0
        while q < m and idx[s + q] == idx[s0 + q] and val[s + q] == val[s0 + q]:
            q += 1
        p = q
        if p == 0:
            break
    return p


@njit(cache=True)
def ftrl_predict(indptr, idx, val, z, n, alpha, beta, l1, l2, out):
    p = shared_prefix(indptr, idx, val)
    base = 0.0
    for j in range(indptr[0], indptr[0] + p):
        k = idx[j]
        base += _ftrl_weight(z[k], n[k], alpha, beta, l1, l2) * val[j]
    for i in range(len(indptr) - 1):
        wx = base
        for j in range(indptr[i] + p, indptr[i + 1]):
            k = idx[j]
            wx += _ftrl_weight(z[k], n[k], alpha, beta, l1, l2) * val[j]
        out[i] = _sigmoid(wx)


@njit(cache=True)
def _mix(x):
    """splitmix64's finaliser (uint64 in, uint64 out)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def factor_init(seed, k, f, std):
    """The initial value of factor ``f`` of bucket ``k``: N(0, std^2), a pure function of
    (seed, k, f) (Box-Muller on two hashed uniforms), so untouched buckets need no memory and
    a restored model needs no random draws."""
    key = _mix(_mix(np.uint64(seed) ^ np.uint64(k)) ^ np.uint64(f))
    a = _mix(key)
    b = _mix(key ^ np.uint64(0x5851F42D4C957F2D))
    u1 = (float(a >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)
    u2 = float(b >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    return std * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _fm_ready(s, e, idx, V, ready, seed, std):
    """Write the initial factors of every bucket of entries s..e not written yet."""
    for j in range(s, e):
        k = idx[j]
        if k != 0 and not ready[k]:
            for f in range(V.shape[1]):
                V[k, f] = factor_init(seed, k, f, std)
            ready[k] = True


@njit(cache=True)
def _fm_factor_sums(s, e, idx, val, V, S, Q):
    """Add entries s..e (factors ready) to each factor's sum ``S`` and sum of squares ``Q``.
    Sums go entry by entry in order, so a row's sums continued from those of its first
    entries are the row's own to the bit."""
    for f in range(V.shape[1]):
        sf = S[f]
        sq = Q[f]
        for j in range(s, e):
            k = idx[j]
            if k == 0:
                continue
            t = V[k, f] * val[j]
            sf += t
            sq += t * t
        S[f] = sf
        Q[f] = sq


@njit(cache=True)
def _fm_pair(S, Q):
    pair = 0.0
    for f in range(S.shape[0]):
        pair += 0.5 * (S[f] * S[f] - Q[f])
    return pair


@njit(cache=True)
def _fm_logit(s, e, idx, val, z, n, V, alpha, beta, l1, l2, w, S, Q):
    """The FM's logit for one example (entries s..e, factors ready); fills ``w`` (linear
    weights, by entry) and ``S`` (the per-factor sums the gradient needs)."""
    lin = 0.0
    for j in range(s, e):
        k = idx[j]
        w[j - s] = _ftrl_weight(z[k], n[k], alpha, beta, l1, l2)
        lin += w[j - s] * val[j]
    S[:] = 0.0
    Q[:] = 0.0
    _fm_factor_sums(s, e, idx, val, V, S, Q)
    return lin + _fm_pair(S, Q)


@njit(cache=True)
def fm_progressive(indptr, idx, val, y, learn, z, n, V, G, touched, ready, seed, std, alpha,
                   beta, l1, l2, lr_v, l2_v, out):
    """Factorisation machine (Rendle 2010) on hashed features, predict-then-learn per example.
    Linear weights by FTRL-Proximal, factors ``V`` by AdaGrad with L2. Bucket 0 (the bias) has
    no factors; a bucket's factors are written (from :func:`factor_init`) when first used
    (``ready``), and it is ``touched`` once learned."""
    kf = V.shape[1]
    w = np.empty(256, dtype=np.float64)
    S = np.empty(kf, dtype=np.float64)
    Q = np.empty(kf, dtype=np.float64)
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1]
        if e - s > w.shape[0]:
            w = np.empty(2 * (e - s), dtype=np.float64)
        _fm_ready(s, e, idx, V, ready, seed, std)
        p = _sigmoid(_fm_logit(s, e, idx, val, z, n, V, alpha, beta, l1, l2, w, S, Q))
        out[i] = p
        if not learn[i] > 0:
            continue
        g = (p - y[i]) * learn[i]
        for j in range(s, e):
            k = idx[j]
            _ftrl_update(z, n, k, g * val[j], w[j - s], alpha)
            if k == 0:
                continue
            touched[k] = True
            for f in range(kf):
                gv = g * val[j] * (S[f] - V[k, f] * val[j]) + l2_v * V[k, f]
                G[k, f] += gv * gv
                V[k, f] -= lr_v * gv / math.sqrt(G[k, f] + 1e-8)


@njit(cache=True)
def fm_predict(indptr, idx, val, z, n, V, ready, seed, std, alpha, beta, l1, l2, out):
    """As :func:`_fm_logit` row by row, the rows' common start (:func:`shared_prefix`) summed
    once."""
    if len(indptr) < 2:
        return
    kf = V.shape[1]
    p = shared_prefix(indptr, idx, val)
    S0, Q0 = np.zeros(kf), np.zeros(kf)
    S, Q = np.empty(kf), np.empty(kf)
    s0 = indptr[0]
    _fm_ready(s0, s0 + p, idx, V, ready, seed, std)
    lin0 = 0.0
    for j in range(s0, s0 + p):
        lin0 += _ftrl_weight(z[idx[j]], n[idx[j]], alpha, beta, l1, l2) * val[j]
    _fm_factor_sums(s0, s0 + p, idx, val, V, S0, Q0)
    for i in range(len(indptr) - 1):
        s, e = indptr[i] + p, indptr[i + 1]
        _fm_ready(s, e, idx, V, ready, seed, std)
        lin = lin0
        for j in range(s, e):
            lin += _ftrl_weight(z[idx[j]], n[idx[j]], alpha, beta, l1, l2) * val[j]
        S[:] = S0
        Q[:] = Q0
        _fm_factor_sums(s, e, idx, val, V, S, Q)
        out[i] = _sigmoid(lin + _fm_pair(S, Q))


@njit(cache=True)
def request_rows(s_hash, s_val, H, V, P, C, cross_kind, cross_ref, sh_hash, mask):
    """CSR rows of one request: the bias, the shared tokens (``s_hash``/``s_val``), then each
    item's present tokens (``H``: hashes, ``V``: values, ``P``: present, ``C``: categorical;
    n x K), then the crosses. Cross ``j`` mixes side 0 and side 1; ``cross_kind[j, s]`` is 0 for
    a shared feature (hash ``sh_hash[cross_ref[j, s]]``) or 1 for item column
    ``cross_ref[j, s]`` (used only where present and categorical)."""
    n, k = H.shape
    m = cross_kind.shape[0]
    s = s_hash.shape[0]
    width = 1 + s + k + m
    indptr = np.zeros(n + 1, dtype=np.int64)
    idx = np.empty(n * width, dtype=np.int64)
    val = np.empty(n * width, dtype=np.float64)
    t = 0
    for i in range(n):
        idx[t] = 0
        val[t] = 1.0
        t += 1
        for j in range(s):
            b = s_hash[j] & mask
            idx[t] = b if b != 0 else 1
            val[t] = s_val[j]
            t += 1
        for j in range(k):
            if P[i, j]:
                b = H[i, j] & mask
                idx[t] = b if b != 0 else 1
                val[t] = V[i, j]
                t += 1
        for j in range(m):
            ha, hb = -1, -1  # a side's hash, or -1 when it has none (CRC-32s are >= 0)
            r = cross_ref[j, 0]
            if cross_kind[j, 0] == 0:
                ha = sh_hash[r]
            elif P[i, r] and C[i, r]:
                ha = H[i, r]
            r = cross_ref[j, 1]
            if cross_kind[j, 1] == 0:
                hb = sh_hash[r]
            elif P[i, r] and C[i, r]:
                hb = H[i, r]
            if ha >= 0 and hb >= 0:
                b = ((((ha * 0x9E3779B1) & 0xFFFFFFFF) ^ hb) & mask)
                idx[t] = b if b != 0 else 1
                val[t] = 1.0
                t += 1
        indptr[i + 1] = t
    return indptr, idx[:t], val[:t]


@njit(cache=True)
def int_columns_expanded(H, V, P, C, N, N_hash):
    """The item columns with a numeric column after each column that holds an int (``N``:
    the ints as floats, NaN where a row has none; ``N_hash``: each column's numeric token):
    hashes, values (0 where no int), present, categorical; and each column's new position."""
    n, k = H.shape
    expand = np.zeros(k, dtype=np.bool_)
    for j in range(k):
        for i in range(n):
            if not math.isnan(N[i, j]):
                expand[j] = True
                break
    width = k + expand.sum()
    H2, V2 = np.empty((n, width), dtype=np.int64), np.empty((n, width))
    P2, C2 = np.empty((n, width), dtype=np.bool_), np.empty((n, width), dtype=np.bool_)
    pos = np.empty(k, dtype=np.int64)
    c = 0
    for j in range(k):
        pos[j] = c
        for i in range(n):
            H2[i, c], V2[i, c], P2[i, c], C2[i, c] = H[i, j], V[i, j], P[i, j], C[i, j]
        c += 1
        if expand[j]:
            for i in range(n):
                x = N[i, j]
                has = not math.isnan(x)
                H2[i, c], V2[i, c], P2[i, c], C2[i, c] = N_hash[j], x if has else 0.0, has, False
            c += 1
    return H2, V2, P2, C2, pos
