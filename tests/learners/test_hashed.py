"""learners/hashed.py: a hashed model's sparse state, read whole or for serving."""

import numpy as np
import pytest

from learners.checks import X, Y
from learners.fm import FactorizationMachine
from learners.ftrl import FTRLProximal


@pytest.mark.parametrize("cls", [FTRLProximal, FactorizationMachine])
def test_a_state_whose_buckets_repeat_or_go_back_is_refused_either_way(cls):
    """Each saved bucket has one row, in order: a state where one comes twice would score by
    whichever row a reader kept, so neither reader takes it."""
    m = cls(bits=12)
    m.progressive_many(X[:300], Y[:300])
    state = m.to_state()
    assert len(state["rows"]) > 2
    for rows in (np.r_[state["rows"][:1], state["rows"][:-1]],  # the first bucket twice
                 state["rows"][::-1].copy()):  # backwards
        bad = {**state, "rows": rows}
        for read in (cls.from_state, cls.from_serving_state):
            with pytest.raises(ValueError, match="strictly increasing"):
                read(bad)
    cls.from_serving_state(state)  # the state as saved is read
