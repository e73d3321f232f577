"""Every check of learners/checks.py on every learner, deep included."""

from __future__ import annotations

import pytest

from learners.checks import yield_checks
from learners.deep.shared import SharedDeepCTR
from learners.registry import ALL, build
from streams.contracts.features import DEFAULT_CROSSES


def small_deep() -> SharedDeepCTR:
    return SharedDeepCTR(buckets=4096, dim=8, hidden=(16,), batch_size=64, device="cpu", seed=3)


def learners():
    for name in ALL:
        yield name, lambda name=name: build([name], DEFAULT_CROSSES[:2])[name]
    yield "deep", small_deep


CASES = [(name, make, check) for name, make in learners() for check in yield_checks(make())]


@pytest.mark.parametrize("name, make, check", CASES,
                         ids=[f"{n}-{c.__name__.removeprefix('check_')}" for n, _, c in CASES])
def test_check(name, make, check):
    check(make())


def test_hashed_state_is_sparse():
    from learners.checks import X, Y
    from learners.hashed import HashedLearner
    from learners.state import encode

    ftrl = build(["ftrl"])["ftrl"]
    assert isinstance(ftrl, HashedLearner)
    ftrl.progressive_many(X[:100], Y[:100])
    _, arrays = encode(ftrl)
    assert sum(a.nbytes for a in arrays) < 100_000  # 4M buckets; only the touched ones saved
