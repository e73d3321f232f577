"""Deep models share parameters for real, switch phase, keep small batches, round-trip."""


from __future__ import annotations

import numpy as np
import torch

from learners.checks import stream
from learners.deep.shared import HEADS, SharedDeepCTR
from learners.state import copy_state

X, Y = stream(2000, seed=5)




def small_deep(**kw) -> SharedDeepCTR:
    return SharedDeepCTR(buckets=4096, dim=8, hidden=(16,), batch_size=64, device="cpu",
                         seed=3, **kw)


def test_one_table_many_heads_and_every_head_reaches_it():
    m = small_deep()
    m.progressive_outputs(X[:200], Y[:200])
    tables = {id(h.shared) for h in m.head_modules}
    assert tables == {id(m.shared)}  # one table object, referenced by every head
    idx = torch.from_numpy(m.hasher.transform(X[:32]))
    for head in m.head_modules:
        m.shared.zero_grad(set_to_none=True)
        head(idx).sum().backward()
        g = m.shared.emb.weight.grad
        assert g is not None and g.coalesce().values().abs().sum() > 0


def test_deep_runs_on_cpu_and_switches_phase():
    m = small_deep(switch_after=1000)
    assert m.phase == 1
    outs = [m.progressive_outputs(X[i:i + 250], Y[i:i + 250]) for i in range(0, 2000, 250)]
    assert m.phase == 2 and m._dev == "cpu"
    for o in outs:
        assert set(o) == {*HEADS, "deep_joint"}
        assert all(np.all((p >= 0) & (p <= 1)) for p in o.values())


def test_small_batches_wait_instead_of_being_dropped():
    m = small_deep()
    m.progressive_outputs(X[:40], Y[:40])  # less than one mini-batch of 64
    assert m.examples_trained == 0 and sum(len(a) for a in m._pending_y) == 40
    m.progressive_outputs(X[40:100], Y[40:100])
    assert m.examples_trained == 64 and sum(len(a) for a in m._pending_y) == 36


def test_deep_state_round_trip():
    m = small_deep(switch_after=500)
    for i in range(0, 1000, 200):
        m.progressive_outputs(X[i:i + 200], Y[i:i + 200])
    again = copy_state(m)
    a, b = m.predict_outputs(X[1000:1100]), again.predict_outputs(X[1000:1100])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5)
    assert again.phase == m.phase == 2
    np.testing.assert_allclose(m.progressive_outputs(X[1100:1300], Y[1100:1300])["deepfm"],
                               again.progressive_outputs(X[1100:1300], Y[1100:1300])["deepfm"],
                               rtol=1e-4)


