"""The worker's and the replica's garbage-collector policy: full collections on a clock."""

import gc

from streams.gcpause import TimedFullCollections


def full_passes_while(make) -> int:
    """How many generation-2 collections ran while ``make()`` allocated."""
    seen = []

    def callback(phase, info):
        if phase == "start" and info["generation"] == 2:
            seen.append(1)

    gc.callbacks.append(callback)
    try:
        make()
    finally:
        gc.callbacks.remove(callback)
    return len(seen)


def in_flight_state():
    """What a stream processor holds between stages: many small containers that live."""
    return [{"id": i, "features": {"k": i}} for i in range(400_000)]


def test_allocation_triggers_full_passes_by_default_and_none_when_timed():
    assert full_passes_while(in_flight_state) >= 1  # CPython's own policy, the control
    timed = TimedFullCollections(every=3600).start()
    try:
        assert full_passes_while(in_flight_state) == 0
    finally:
        timed.stop()


def test_the_clock_runs_full_passes():
    timed = TimedFullCollections(every=0.05).start()
    try:
        import time

        n = full_passes_while(lambda: time.sleep(0.5))
    finally:
        timed.stop()
    assert n >= 3
