"""The worker's and the replica's garbage-collector policy: full collections on a clock."""

import gc
import time

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
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's own policy, the control
    try:
        assert full_passes_while(in_flight_state) >= 1
    finally:
        gc.set_threshold(*before)
    timed = TimedFullCollections(every=3600).start()
    try:
        assert full_passes_while(in_flight_state) == 0
    finally:
        timed.stop()


def test_the_clock_runs_full_passes():
    seen = []

    def callback(phase, info):
        if phase == "stop" and info["generation"] == 2:
            seen.append(1)

    gc.callbacks.append(callback)
    timed = TimedFullCollections(every=0.05).start()
    try:
        deadline = time.monotonic() + 20  # a full pass over a big test process takes a while
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timed.stop()
        gc.callbacks.remove(callback)
    assert len(seen) >= 2
