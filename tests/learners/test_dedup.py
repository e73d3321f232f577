"""learners/dedup.py: exactly-once by example id (its doctest walks the rules through)."""

import numpy as np

from learners.dedup import DUPLICATE, LATE, NEW, LearnedIds


def _reference(learned: set, floor: float, hs, ts) -> list[int]:
    """The rules, one id at a time: learned before, or again after a new one of this batch,
    is a duplicate; at or before the floor (and not remembered) is late; else new."""
    out, new = [], set()
    for h, t in zip(hs, ts, strict=True):
        if h in learned or h in new:
            out.append(DUPLICATE)
        elif t <= floor:
            out.append(LATE)
        else:
            out.append(NEW)
            new.add(h)
    return out


def test_batches_with_repeats_late_ids_and_forgotten_ones_follow_the_rules():
    rng = np.random.default_rng(7)
    ids = LearnedIds(horizon=1e9, capacity=300)  # small: the floor rises, ids are forgotten
    for step in range(40):
        n = int(rng.integers(1, 400))
        hs = rng.integers(2, 1500, size=n).astype(np.uint64)
        ts = step * 10.0 + rng.uniform(-60, 10, size=n)
        remembered = {int(h) for h in range(1500) if int(h) in ids}
        want = _reference(remembered, ids.floor, hs.tolist(), ts.tolist())
        got = ids.classify(hs, ts).tolist()
        assert got == want, step
        new = np.array(got) == NEW
        ids.add(hs[new], ts[new], now=float(step))
    assert ids.floor > float("-inf")  # the capacity forced ids out: late ones were tried


def test_a_batch_of_one_id_many_times_learns_it_once():
    ids = LearnedIds()
    hs = np.full(50_000, 12345, dtype=np.uint64)
    out = ids.classify(hs, np.arange(50_000, dtype=float))
    assert out[0] == NEW and (out[1:] == DUPLICATE).all()
