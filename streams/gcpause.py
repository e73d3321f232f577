"""Python's cyclic garbage collector, kept off the latency path (serving) and the hot path
(the worker).

A full (generation 2) collection walks every container object the process holds: after Faust,
aiohttp, numpy and the learners are imported that is about 190k objects, and one such pass took
90 to 110 ms on the 2-core test machine, on the event loop, in the middle of whatever request was
being answered. Objects alive once a process has started (modules, classes, functions, the
app) live until it exits: :func:`freeze_startup` moves them out of the collector's reach
(``gc.freeze``), so a full pass walks only what was made since. A model snapshot adds a few
dozen container objects (its weights are numpy arrays), so swaps need no new freeze. In the
worker the same freeze took a do-nothing Faust agent from 43k to 71k events/s here: every
event allocates a few objects, and the collections that allocation triggers walked the whole
startup heap.

**Full collections on a clock, not on allocation.** A stream processor holds much in-flight
state that lives just long enough to reach the oldest generation: requests waiting for their
clicks, batches between stages, records fetched ahead. CPython starts a full collection after
about 70,000 net allocations once that generation grew by a quarter, so it walks the same
in-flight state again and again: in the worker, through Kafka on the MovieLens stream, 30 full
collections took 5.3 s of a 25 s run (about 175 ms each), while the young generations took
1.0 s. Young collections stay as CPython runs them; :class:`TimedFullCollections` runs the full
ones every ``every`` seconds from a thread instead (any cyclic garbage waits at most that long).
:func:`observe_pauses` records every collection's duration, per generation, for Grafana.

**Young collections far apart in the worker** (``young``). At CPython's 700 allocations a
young (generation 0) pass, with a middle (generation 1) pass every tenth, a batch's events,
records and rows are walked while they are still alive (they live for the batch, or for their
join window) and walked again in the middle generation before they reach the oldest: through
Kafka on the MovieLens stream (100,000 examples, one worker) ~6,400 young and ~580 middle
passes took 1.5-1.6 s of the worker's ~13.6 s of CPU. With a young pass every 100,000
allocations and none of the middle generation (its survivors wait for the timed full pass,
which walks them anyway) 19-20 passes took 0.77-0.91 s, about 45 ms each. A young pass walks
what is alive of the objects made since the last: the net count that sets it off is objects
made less objects freed, so what it walks is what outlived that many allocations. At 100,000
(here most of a second of the stream) that is every batch still in the join or waiting for its
checkpoint, each walked once more; at 1,000,000 (the default, ``young``) most of it is freed
before a pass comes: 16-19 passes took 1.04-1.13 s of a run, one pass 0.28-0.40 s, the run's
examples/s 9-13% higher, peak RSS no higher (docs/benchmarks.md). Garbage cycles made and
dropped between passes go at the next young pass as before; a replica keeps CPython's
thresholds (its young heap is a few requests, and a pause there is a request's latency).

**Never a metric inside a collection.** A collection runs wherever an allocation sets it off,
also inside prometheus-client's own code: in multi-process mode (``aimass serve --workers N``)
every value of the process shares one lock that is not re-entrant, held while a new labelled
series is made (which allocates). A pause observed from the collector's callback there took that
lock again, in the thread that held it, and the replica's loop waited forever: CI saw half the
calls to two replicas go unanswered. The callback only appends to a queue; a thread moves the
pauses into the histogram every second (:meth:`PauseObserver.flush`).

>>> import gc
>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> pauses = observe_pauses(registry)
>>> _ = gc.collect()
>>> pauses.flush()
>>> registry.get_sample_value("aimass_gc_pause_seconds_count", {"generation": "2"}) >= 1
True
>>> stop_observing(pauses)
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque

from prometheus_client import CollectorRegistry, Histogram

PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
NEVER = 2**31 - 1  # a generation-1 count no process reaches: no allocation-triggered full pass


def freeze_startup() -> int:
    """Collect once, then exempt every object alive now from later collections. Returns how
    many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def observe_pauses(registry: CollectorRegistry, every: float = 1.0) -> PauseObserver:
    """Time each collection into ``aimass_gc_pause_seconds{generation}``; returns the
    observer (pass it to :func:`stop_observing`)."""
    return PauseObserver(registry, every)


def stop_observing(observer: PauseObserver) -> None:
    observer.stop()


class PauseObserver:
    """Times every collection from ``gc.callbacks``, queues it, and observes it into the
    histogram from a thread of its own, outside any collection."""

    def __init__(self, registry: CollectorRegistry, every: float = 1.0):
        hist = Histogram("aimass_gc_pause_seconds", "Cyclic garbage collector pauses",
                         ["generation"], buckets=PAUSE_BUCKETS, registry=registry)
        self._children = {g: hist.labels(str(g)) for g in (0, 1, 2)}
        self._pending: deque = deque(maxlen=100_000)  # appended to without a lock
        self._started = 0.0
        self._stopped = threading.Event()
        gc.callbacks.append(self._callback)
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True,
                                        name="gc-pauses")
        self._thread.start()

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pending.append((info["generation"], time.perf_counter() - self._started))

    def flush(self) -> None:
        """Observe the pauses queued so far."""
        while True:
            try:
                generation, seconds = self._pending.popleft()
            except IndexError:
                return
            self._children[generation].observe(seconds)

    def _run(self, every: float) -> None:
        while not self._stopped.wait(every):
            self.flush()

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        self._stopped.set()
        self._thread.join()
        self.flush()


class TimedFullCollections:
    """Full (generation 2) collections every ``every`` seconds, none triggered by allocation;
    with ``young``, a young pass every ``young`` allocations and no middle-generation pass
    but the full ones.

    >>> timed = TimedFullCollections(every=0.05).start()
    >>> gc.get_threshold()[2] == NEVER
    True
    >>> class Node:
    ...     pass
    >>> a, b = Node(), Node()
    >>> a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
    >>> gone = threading.Event()
    >>> import weakref
    >>> _ = weakref.finalize(a, gone.set)
    >>> del a, b
    >>> gone.wait(5.0)
    True
    >>> timed.stop()
    >>> gc.get_threshold()[2] == NEVER
    False
    """

    def __init__(self, every: float = 30.0, young: int | None = None):
        if not every > 0:
            raise ValueError(f"every must be > 0 seconds, got {every!r}")
        if young is not None and not 1 <= young < NEVER:
            raise ValueError(f"young must be a count of allocations >= 1, got {young!r}")
        self.every = every
        self.young = young  # allocations between young passes; None: as before start()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._threshold = gc.get_threshold()

    def start(self) -> TimedFullCollections:
        self._threshold = gc.get_threshold()
        if self.young is None:
            gc.set_threshold(self._threshold[0], self._threshold[1], NEVER)
        else:  # the middle generation's survivors wait for the timed full pass
            gc.set_threshold(self.young, NEVER, NEVER)
        self._thread = threading.Thread(target=self._run, name="gc-full", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self.every):
            gc.collect(2)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        gc.set_threshold(*self._threshold)
