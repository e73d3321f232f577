"""A tenant's examples from several partitions' joiners, released in request-time order.
Kafka-free.

Each partition has its own joiner, which releases examples in request order. But partitions are
read at their own pace: replaying history (or catching up after a stop), one partition can be
read thousands of events ahead of another, and the trainer would learn from next week before
yesterday. On the MovieLens stream that cost FTRL 0.006 of progressive log loss against a
request-ordered loop. The merge holds each released example until no partition of its tenant
can still release an earlier one. A partition's bound is the request time of its oldest open
request; with none open, the time of the last request it read, unless it is caught up (less
than a batch left to read on it), when it bounds nothing; a partition with unread events where
none of the tenant's requests were read yet holds the tenant back until it catches up. Each
example waits until the slowest partition's joiner reaches its time: in live traffic, where
every partition is caught up, that is the skew between partitions; catching up on a backlog,
the examples read ahead wait in memory.

>>> from streams.contracts.events import TrainingExample
>>> m = OrderedMerge()
>>> ex = lambda rid, t: TrainingExample(f"{rid}/a", t, "t", {}, 1)
>>> m.add("t", [(ex("r2", 20.0), "r2")])   # partition 0 read ahead
>>> m.release("t", [15.0, 30.0])           # partition 1 may still release time 15
[]
>>> m.holds("r2")
True
>>> m.add("t", [(ex("r1", 15.0), "r1")])
>>> [e.id for e in m.release("t", [40.0, 30.0])]
['r1/a', 'r2/a']
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter

from streams.contracts.events import TrainingExample


class OrderedMerge:
    def __init__(self):
        self._heaps: dict[str, list] = {}  # tenant -> heap of (request time, seq, example, rid)
        self._held: Counter = Counter()  # request id -> its examples still held
        self._seq = itertools.count()

    def __len__(self) -> int:
        return sum(len(h) for h in self._heaps.values())

    def add(self, tenant: str, made: list[tuple[TrainingExample, str]]) -> None:
        """Examples (with their request ids) a joiner released."""
        heap = self._heaps.setdefault(tenant, [])
        for ex, rid in made:
            heapq.heappush(heap, (ex.event_time, next(self._seq), ex, rid))
            self._held[rid] += 1

    def holds(self, request_id: str) -> bool:
        """Are any of this request's examples still held (so its events must stay unacked)?"""
        return request_id in self._held

    def release(self, tenant: str, bounds: list[float]) -> list[TrainingExample]:
        """The tenant's held examples no partition can precede any more: request time at most
        the lowest of ``bounds`` (one per partition; an empty list bounds nothing)."""
        heap = self._heaps.get(tenant)
        if not heap:
            return []
        upto = min(bounds, default=float("inf"))
        out = []
        while heap and heap[0][0] <= upto:
            out.append(self._pop(heap))
        return out

    def release_all(self) -> list[TrainingExample]:
        """Everything held (the stream went idle and every window is closed)."""
        out = []
        for heap in self._heaps.values():
            while heap:
                out.append(self._pop(heap))
        return out

    def tenants(self) -> list[str]:
        return [t for t, h in self._heaps.items() if h]

    def _pop(self, heap: list) -> TrainingExample:
        _, _, ex, rid = heapq.heappop(heap)
        self._held[rid] -= 1
        if not self._held[rid]:
            del self._held[rid]
        return ex
