"""Priority dispatch for requests scored asynchronously through Kafka: higher priority first,
then the nearer deadline, then arrival; requests already past their deadline are dropped and
counted, never scored.

>>> from streams.contracts.events import AdRequest, Candidate
>>> d = Dispatcher()
>>> for rid, prio, deadline in [("a", 0, None), ("b", 5, 200.0), ("c", 5, 150.0),
...                             ("late", 9, 90.0)]:
...     d.submit(AdRequest(rid, 1.0, "t", {}, [Candidate("x")], priority=prio,
...                        deadline=deadline))
>>> ready, expired = d.drain(now=100.0)
>>> [r.id for r in ready], [r.id for r in expired]
(['c', 'b', 'a'], ['late'])
"""

from __future__ import annotations

import heapq
import itertools

from streams.contracts.events import AdRequest


class Dispatcher:
    def __init__(self):
        self._heap: list[tuple] = []
        self._seq = itertools.count()
        self.expired = 0

    def __len__(self) -> int:
        return len(self._heap)

    def submit(self, req: AdRequest) -> None:
        deadline = req.deadline if req.deadline is not None else float("inf")
        heapq.heappush(self._heap, (-req.priority, deadline, next(self._seq), req))

    @staticmethod
    def order(reqs: list[AdRequest], now: float) -> tuple[list[AdRequest], list[AdRequest]]:
        """One batch in dispatch order, and its expired requests: what :meth:`submit` of
        each then :meth:`drain` gives, without the heap when no request has a priority or a
        deadline (the common case: arrival order).

        >>> d = [AdRequest(r, 1.0, "t", {}, [], priority=p) for r, p in (("a", 0), ("b", 3))]
        >>> [r.id for r in Dispatcher.order(d, 0.0)[0]]
        ['b', 'a']
        """
        if all(r.priority == 0 and r.deadline is None for r in reqs):
            return list(reqs), []
        d = Dispatcher()
        for r in reqs:
            d.submit(r)
        return d.drain(now)

    def drain(self, now: float, limit: int | None = None) -> tuple[list[AdRequest],
                                                                   list[AdRequest]]:
        """Up to ``limit`` requests in dispatch order, and the expired ones met on the way."""
        ready, expired = [], []
        while self._heap and (limit is None or len(ready) < limit):
            _, deadline, _, req = heapq.heappop(self._heap)
            if deadline < now:
                expired.append(req)
                self.expired += 1
            else:
                ready.append(req)
        return ready, expired
