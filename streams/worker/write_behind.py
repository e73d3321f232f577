"""Sink writes behind the stages: a stage hands its rows over and goes on to its next batch;
the rows of each table gather into one insert.

A ClickHouse insert costs the server about as much as a few thousand rows: measured here
(ClickHouse 18.16, the worker's predictions rows, 60,000 rows per trial) 16-24 ms of server
CPU an insert at 500 or 2,000 rows, against 1.5-2.8 µs a row at 30,000 (docs/benchmarks.md).
Inserting whenever the last insert was done made an insert of each table per batch of 2,000
events: on the MovieLens replay with two workers the server took 39 µs of CPU an example,
a quarter as much as the workers themselves, on a machine they all share. So an insert waits
until ``min_rows`` rows have gathered for its table or the oldest of them has waited
``max_seconds`` (the events they came from are acknowledged only once their rows are written,
so that is also the most a batch's acknowledgement waits for them), whichever comes first, or
the stage says its input is drained (:meth:`WriteBehind.flush`): at the end of a burst the
last rows went in only after ``max_seconds``, and the join's last acknowledgements, with the
idle flush waiting on them, that much later.

Each :meth:`WriteBehind.write` gets the future of its rows; :meth:`WriteBehind.drain` waits for
those written so far (a stage calls it before acknowledging the events they came from),
:meth:`WriteBehind.take` hands them over. Past ``max_rows`` rows gathered for one table, a
write waits (back-pressure reaches the consumer).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from sinks import schema


@dataclass
class _Gathering:
    table: schema.Table
    since: float  # the loop's time of its first row
    rows: list = field(default_factory=list)
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    full: asyncio.Event = field(default_factory=asyncio.Event)


class WriteBehind:
    """``writer``: an async callable ``(table, rows)`` that writes one insert (the runtime's
    :meth:`~streams.worker.runtime.Runtime.write`, which waits out back-pressure)."""

    def __init__(self, writer, min_rows: int = 20_000, max_seconds: float = 1.0,
                 max_rows: int = 100_000):
        if not 1 <= min_rows <= max_rows:
            raise ValueError(f"need 1 <= min_rows <= max_rows, got {min_rows}, {max_rows}")
        if not max_seconds >= 0:
            raise ValueError(f"max_seconds must be >= 0, got {max_seconds!r}")
        self.writer = writer
        self.min_rows, self.max_seconds, self.max_rows = min_rows, max_seconds, max_rows
        self.pending: deque[asyncio.Future] = deque()
        self._gathering: dict[str, _Gathering] = {}
        self._inserting: dict[str, asyncio.Task] = {}

    async def write(self, table: schema.Table, rows: list[dict]) -> None:
        if not rows:
            return
        name = table.name
        g = self._gathering.get(name)
        if g is None:
            g = self._gathering[name] = _Gathering(table, asyncio.get_running_loop().time())
        g.rows.extend(rows)
        if len(g.rows) >= self.min_rows:
            g.full.set()
        self.pending.append(g.done)
        task = self._inserting.get(name)
        if task is None or task.done():
            if task is not None:
                task.result()  # an insert that failed fails the next write
            task = self._inserting[name] = asyncio.ensure_future(self._insert(name))
        while name in self._gathering and len(self._gathering[name].rows) > self.max_rows:
            await asyncio.wait([task])  # back-pressure: the table is behind
            task.result()

    async def _insert(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        while name in self._gathering:
            g = self._gathering[name]
            wait = g.since + self.max_seconds - loop.time()
            if wait > 0 and not g.full.is_set():
                try:
                    await asyncio.wait_for(g.full.wait(), wait)
                except TimeoutError:
                    pass
            del self._gathering[name]  # later rows gather into the next insert
            try:
                await self.writer(g.table, g.rows)
            except BaseException as exc:
                g.done.set_exception(exc)
                raise
            g.done.set_result(None)

    def flush(self) -> None:
        """Insert what has gathered now, whatever its size: the stage's input is drained (its
        batch came short of full), so no rows are on their way to fill it, and waiting out
        ``max_seconds`` would only hold back the acknowledgements that wait on these rows."""
        for g in self._gathering.values():
            g.full.set()

    async def drain(self) -> None:
        """Until every row written before the call is in (raising an insert's error). Rows
        written meanwhile are not waited for: a stage acknowledging events waits for their
        rows, not for the batches read since, which through a backlog keep coming."""
        owed = list(self.pending)
        for done in owed:
            await done
        owed_ids = {id(f) for f in owed}
        while self.pending and id(self.pending[0]) in owed_ids:
            self.pending.popleft()

    def take(self) -> list[asyncio.Future]:
        """The writes not confirmed yet, handed over (to await before acknowledging their
        events); later writes start a new list."""
        out, self.pending = list(self.pending), deque()
        return out


def write_behind(runtime) -> WriteBehind:
    """A stage's writes behind, through ``runtime`` (its settings' ``sink_min_rows`` and
    ``sink_max_seconds``)."""
    s = runtime.settings
    return WriteBehind(runtime.write, s.sink_min_rows, s.sink_max_seconds)
