"""Each combiner's compiled progressive pass (ensemble._kernels) against the example-by-example
one of the base class: the same predictions and the same state after, batch after batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble import Average, Hedge, Stacking, Vote
from ensemble.base import Combiner

MAKERS = {"average": Average, "weighted": Hedge, "stacking": Stacking,
          **{f"vote-{p}": (lambda p=p: Vote(0.6, p)) for p in
             ("weighted", "average", "best", "abstain")}}


def _state(c) -> dict:
    h = c.hedge if isinstance(c, Vote) else c
    out = {"conflicts": getattr(c, "conflicts", 0), "decisions": getattr(c, "decisions", 0)}
    for name in ("losses", "w", "_g2"):
        v = getattr(h if name == "losses" else c, name, None)
        out[name] = None if v is None else np.asarray(v).tolist()
    return out


@pytest.mark.parametrize("name", sorted(MAKERS))
@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 7), cuts=st.lists(st.integers(0, 60), min_size=1, max_size=4),
       seed=st.integers(0, 2**16))
def test_compiled_pass_is_the_one_by_one_pass(name, m, cuts, seed):
    rng = np.random.default_rng(seed)
    fast, slow = MAKERS[name](), MAKERS[name]()
    for n in cuts:
        P = rng.choice([0.0, 0.5, 1.0, 0.3], size=(n, m)) if seed % 5 == 0 else rng.random((n, m))
        y = (rng.random(n) < 0.5).astype(float)
        learn = rng.choice([0.0, 1.0, 2.0], size=n)
        got = fast.combine_progressive(P, y, learn)
        want = Combiner.combine_progressive(slow, P, y, learn)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        a, b = _state(fast), _state(slow)
        assert a.keys() == b.keys()
        for k in a:
            if a[k] is None or isinstance(a[k], int):
                assert a[k] == b[k], k
            else:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_other_members_or_shapes_are_refused_not_read_past(name):
    c = MAKERS[name]()
    c.combine_progressive(np.full((3, 3), 0.6), np.ones(3))
    if name != "average":  # it learns nothing, so any number of members will do
        with pytest.raises(ValueError, match="members"):
            c.combine_progressive(np.full((2, 4), 0.6), np.ones(2))
    with pytest.raises(ValueError, match="labels"):
        c.combine_progressive(np.full((2, 3), 0.6), np.ones(3))
