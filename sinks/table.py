"""A ClickHouse table sink: ``write(batch)`` inserts one batch of rows in one round trip.

Rows are dicts keyed by the table's column names (:class:`sinks.schema.Table`); the sink puts
them in the table's order, so no caller depends on positions.

Errors come in two kinds (:mod:`sinks.exceptions`):

- **retryable** (the server is down or overloaded): :class:`SinkBackpressure` is raised with a
  growing ``retry_after``; the caller pauses its consumer and writes the same batch again.
  Nothing is dropped and nothing is buffered beyond the batch in hand.
- **fatal, a row's fault** (a type, a value out of range): the batch is split in halves until
  the rows that fail alone are found; the others are written and the bad ones returned, each
  with the column and the reason, for the caller's dead letters.
- **fatal, the table's fault** (no such table or column, SQL, permissions): no row can ever be
  written: :class:`SinkFatal` is raised, loudly, naming the table.
"""

from __future__ import annotations

import logging
import operator
import socket
from dataclasses import dataclass, field

from .clickhouse import ClickHouse
from .exceptions import SinkBackpressure, SinkFatal
from .schema import Table

log = logging.getLogger(__name__)

# ClickHouse server error codes that pass: overload, timeouts, read-only replicas, network
RETRYABLE_CODES = {159, 164, 202, 209, 210, 241, 242, 252, 319, 425, 999}
# ... and those that say the table is wrong, whatever the rows
SCHEMA_CODES = {16, 47, 60, 62, 81, 192, 497, 516}
SCHEMA_NAMES = ("UNKNOWN_TABLE", "NO_SUCH_COLUMN_IN_TABLE", "UNKNOWN_DATABASE", "SYNTAX_ERROR",
                "UNKNOWN_IDENTIFIER", "ACCESS_DENIED", "UNKNOWN_USER")


def is_schema_error(exc: Exception) -> bool:
    code = getattr(exc, "code", None)
    return code in SCHEMA_CODES or any(n in str(exc) for n in SCHEMA_NAMES)


def is_retryable(exc: Exception) -> bool:
    """Connection, timeout and overload errors, from the server's driver or chdb."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.timeout | EOFError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return True
    try:
        from clickhouse_driver import errors as che
    except ImportError:  # pragma: no cover - the driver is a dependency
        return False
    if isinstance(exc, che.NetworkError | che.SocketTimeoutError |
                  che.UnexpectedPacketFromServerError):
        return True
    code = getattr(exc, "code", None)
    if isinstance(exc, che.ServerException) and code in RETRYABLE_CODES:
        return True
    return "TOO_MANY_PARTS" in str(exc) or "MEMORY_LIMIT_EXCEEDED" in str(exc)


@dataclass
class WriteReport:
    """What a write did: rows written, and the rows that can never be written (row, column,
    reason)."""

    written: int = 0
    rejected: list[tuple[dict, str | None, str]] = field(default_factory=list)


class TableSink:
    """Batch writer for one table."""

    def __init__(self, ch: ClickHouse, table: Table, max_retry_after: float = 5.0):
        self.ch = ch
        self.table = table
        self.rows_written = 0
        self.backpressure = False
        self._retry_after = 0.1
        self._max_retry_after = max_retry_after
        self._order = operator.itemgetter(*table.column_names)

    def tuples(self, rows: list[dict]) -> list[tuple]:
        try:
            return [self._order(r) for r in rows]
        except KeyError as exc:
            raise SinkFatal(self.table.name, str(exc.args[0]), "missing from a row") from None

    def write(self, batch: list[dict]) -> WriteReport:
        report = WriteReport()
        if not batch:
            return report
        self._write(batch, report)
        self.rows_written += report.written
        return report

    def _write(self, rows: list[dict], report: WriteReport) -> None:
        try:
            n = self.ch.insert(self.table.name, self.table.column_names, self.tuples(rows))
        except SinkFatal:
            raise
        except Exception as exc:
            if is_retryable(exc):
                self.backpressure = True
                wait = self._retry_after
                self._retry_after = min(self._retry_after * 2, self._max_retry_after)
                raise SinkBackpressure(self.table.name, exc, wait) from exc
            if is_schema_error(exc):
                raise SinkFatal(self.table.name, None, f"{type(exc).__name__}: "
                                f"{str(exc)[:500]}") from exc
            if len(rows) == 1:
                column, reason = self.table.explain(rows[0])
                report.rejected.append((rows[0], column, reason or
                                        f"{type(exc).__name__}: {str(exc)[:300]}"))
                log.warning("row refused by %s (%s): %s", self.table.name, column, exc)
                return
            half = len(rows) // 2
            self._write(rows[:half], report)
            self._write(rows[half:], report)
            return
        self.backpressure = False
        self._retry_after = 0.1
        report.written += n if isinstance(n, int) else len(rows)
