"""What a sink raises: retryable (wait, then write the same batch again) or fatal (the batch,
or a row of it, can never be written as it is).

>>> isinstance(SinkBackpressure("t", OSError("down"), 0.5), RetryableSinkError)
True
>>> str(SinkFatal("examples", "event_time", "out of range for DateTime"))
'sink examples, column event_time: out of range for DateTime'
"""

from __future__ import annotations


class SinkError(Exception):
    """Base of the sinks' errors."""


class RetryableSinkError(SinkError):
    """The sink cannot take the batch now (connection, overload); the same batch may succeed
    later."""


class SinkBackpressure(RetryableSinkError):
    """The sink cannot take more now; retry the same batch after ``retry_after`` seconds."""

    def __init__(self, table: str, cause: Exception, retry_after: float):
        super().__init__(f"sink {table} is applying back-pressure ({cause}); retry in "
                         f"{retry_after:.1f}s")
        self.table, self.cause, self.retry_after = table, cause, retry_after


class SinkFatal(SinkError):
    """The batch cannot be written as it is: schema, type or SQL. ``column`` names the column
    when it is known; retrying would fail the same way."""

    def __init__(self, table: str, column: str | None, reason: str):
        where = f"sink {table}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {reason}")
        self.table, self.column, self.reason = table, column, reason
