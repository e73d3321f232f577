"""A ClickHouse table sink: ``write(batch)`` inserts one batch of rows in one round trip.

It signals back-pressure instead of growing: when an insert fails (server down, too many parts)
the batch is kept, ``backpressure`` turns true and :class:`SinkBackpressure` is raised, so the
caller pauses its consumer and retries the same batch; nothing is dropped and nothing is buffered
beyond the batch in hand.
"""

from __future__ import annotations

from .clickhouse import ClickHouse
from .schema import Table


class SinkBackpressure(RuntimeError):
    """The sink cannot take more now; retry the same batch after ``retry_after`` seconds."""

    def __init__(self, table: str, cause: Exception, retry_after: float):
        super().__init__(f"sink {table} is applying back-pressure ({cause}); retry in "
                         f"{retry_after:.1f}s")
        self.retry_after = retry_after


class TableSink:
    """Batch writer for one table."""

    def __init__(self, ch: ClickHouse, table: Table, max_retry_after: float = 5.0):
        self.ch = ch
        self.table = table
        self.rows_written = 0
        self.backpressure = False
        self._retry_after = 0.1
        self._max_retry_after = max_retry_after

    def write(self, batch: list[tuple]) -> int:
        if not batch:
            return 0
        try:
            n = self.ch.insert(self.table.name, self.table.column_names, batch)
        except Exception as exc:
            self.backpressure = True
            wait = self._retry_after
            self._retry_after = min(self._retry_after * 2, self._max_retry_after)
            raise SinkBackpressure(self.table.name, exc, wait) from exc
        self.backpressure = False
        self._retry_after = 0.1
        self.rows_written += n
        return n

