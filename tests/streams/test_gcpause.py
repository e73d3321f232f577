"""The worker's and the replica's garbage-collector policy: full collections on a clock."""

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

from streams.gcpause import TimedFullCollections


def passes_while(make) -> dict[int, int]:
    """How many collections of each generation ran while ``make()`` allocated."""
    seen = {0: 0, 1: 0, 2: 0}

    def callback(phase, info):
        if phase == "start":
            seen[info["generation"]] += 1

    gc.callbacks.append(callback)
    try:
        make()
    finally:
        gc.callbacks.remove(callback)
    return seen


def full_passes_while(make) -> int:
    """How many generation-2 collections ran while ``make()`` allocated."""
    return passes_while(make)[2]


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


def test_young_passes_come_every_young_allocations_and_no_middle_ones():
    before = gc.get_threshold()
    timed = TimedFullCollections(every=3600, young=50_000).start()
    try:
        seen = passes_while(in_flight_state)  # 800,000 containers: about 16 young passes
    finally:
        timed.stop()
    assert 10 <= seen[0] <= 20, seen
    assert seen[1] == seen[2] == 0, seen
    assert gc.get_threshold() == before  # stop() puts CPython's thresholds back


def test_young_must_be_a_count():
    for bad in (0, -5, 2**31 - 1):
        try:
            TimedFullCollections(young=bad)
        except ValueError as e:
            assert "young" in str(e)
        else:
            raise AssertionError(f"young={bad} accepted")


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


def test_a_collection_inside_a_metric_update_does_not_hang(tmp_path):
    """In prometheus-client's multi-process mode every value shares one lock that is not
    re-entrant; a collection set off while it is held (a new labelled series allocates) must
    not take it again. With a collection at nearly every allocation, a new series each time."""
    script = (
        "import gc\n"
        "from prometheus_client import CollectorRegistry, Counter\n"
        "from streams.gcpause import observe_pauses, stop_observing\n"
        "registry = CollectorRegistry()\n"
        "pauses = observe_pauses(registry)\n"
        "c = Counter('x_total', 'x', ['a'], registry=registry)\n"
        "gc.set_threshold(1)\n"
        "for i in range(300):\n"
        "    c.labels(str(i)).inc()\n"
        "gc.set_threshold(700, 10, 10)\n"
        "stop_observing(pauses)\n"
        "print(registry.get_sample_value('aimass_gc_pause_seconds_count',"
        " {'generation': '0'}) > 0)\n")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=60, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
