"""How late a replica's event loop runs, and the rule that sheds calls while it runs late.

A replica answers on one event loop. Past what it can score, requests wait on that loop (their
bodies read, their tasks ready, the loop busy with the ones before them), and every answer
comes later than the one before: a queue without bound. :class:`LoopLag` measures that wait
without touching the requests: a timer is due every ``every`` seconds, and how long the one
due now has waited is how long anything ready on the loop waits. While that is over
``max_lag`` the API answers new calls 503 with ``Retry-After`` before reading their bodies
(the cheapest answer it has), so the loop catches up and the callers back off or go to
another replica. A request that carries a ``deadline`` is also shed once scoring it would be
too late (:meth:`streams.serving.api.Serving.recommend`). Calls held at once are bounded too,
per endpoint (``MAX_IN_FLIGHT``): clients that open calls and send their bodies slowly cannot
make the replica hold an unbounded number of them, and slow calls of one endpoint (examples
waiting on Kafka's acknowledgement) do not shed another's.

The signal rests on how asyncio's loop orders its work: a timer due is run in the first turn
after it, beside the sockets that turn found ready, so a turn spent on a backlog shows as a
late timer. Under uvloop it did not: one replica offered twice what it could answer kept
answering with a tail of 13 s where asyncio's stayed under 0.7 s (docs/benchmarks.md,
2026-12-07), so the replicas keep asyncio's loop.

>>> import asyncio, time
>>> async def demo():
...     lag = LoopLag(every=0.01).start()
...     await asyncio.sleep(0.05)
...     quiet = lag.late()
...     time.sleep(0.2)  # the loop blocked, as by a backlog of requests
...     busy = lag.late()
...     await asyncio.sleep(0.05)  # its timer ran: caught up
...     caught_up = lag.late()
...     lag.stop()
...     return quiet < 0.15, busy >= 0.15, caught_up < 0.15
>>> asyncio.run(demo())
(True, True, True)
"""

from __future__ import annotations

import asyncio

MAX_LAG = 0.25  # seconds: past it a replica answers new calls 503 (an auction waits less)
# calls of one endpoint a replica holds at once (bodies being read, waiting, being scored): at
# about 2 ms of CPU a /recommend, 128 is about MAX_LAG's worth of work; past it 503
MAX_IN_FLIGHT = 128
UNLIMITED = ("/healthz", "/readyz", "/metrics")  # probes and scrapes: answered when busy too
BUSY = "overloaded: the replica runs behind (see Retry-After)"


class LoopLag:
    """How long the loop's timer due now has waited past its time: 0 on a loop that keeps
    up; on one working through a backlog, how long it has run without coming back to its
    timers."""

    def __init__(self, every: float = 0.02):
        self.every = every
        self._due: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> LoopLag:
        self._loop = asyncio.get_running_loop()
        self._schedule()
        return self

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _schedule(self) -> None:
        self._due = self._loop.time() + self.every
        self._handle = self._loop.call_at(self._due, self._schedule)

    def late(self) -> float:
        """Seconds the loop runs late now."""
        if self._loop is None or self._due is None:
            return 0.0
        return max(self._loop.time() - self._due, 0.0)
