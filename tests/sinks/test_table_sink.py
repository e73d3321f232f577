"""A row a sink can never take goes to the dead letters with its column while the rest is
written; an outage is back-pressure; a schema error is fatal and names the table."""


from __future__ import annotations

import pytest

from sinks import schema
from sinks.exceptions import SinkBackpressure, SinkFatal
from sinks.table import TableSink
from streams.contracts import batches
from streams.contracts.events import (
    Feedback,
)


class RefusingClickHouse:
    """Refuses any insert holding an event time beyond DateTime (as the driver does), or a
    connection error while ``down``."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.down = False

    def insert(self, table, columns, rows):
        if self.down:
            raise ConnectionRefusedError("ClickHouse is down")
        i = columns.index("event_time")
        if any(r[i] >= 2**32 for r in rows):
            raise OverflowError("'I' format requires 0 <= number <= 4294967295")
        self.rows += rows
        return len(rows)


def test_a_row_the_table_cannot_take_is_found_and_the_rest_written():
    ch = RefusingClickHouse()
    sink = TableSink(ch, schema.FEEDBACK)
    fbs = [Feedback(f"f{i}", 1.7e9, "t", "r", "a", "click") for i in range(100)]
    rows = batches.feedback_rows(fbs, 1)
    rows[37]["event_time"] = 2**32 + 5  # slipped past validation somehow
    report = sink.write(rows)
    assert report.written == 99 and len(ch.rows) == 99
    [(row, column, reason)] = report.rejected
    assert row["feedback_id"] == "f37" and column == "event_time"
    assert "out of range for DateTime" in reason


def test_a_connection_error_is_backpressure_not_a_dead_letter():
    ch = RefusingClickHouse()
    ch.down = True
    sink = TableSink(ch, schema.FEEDBACK)
    rows = batches.feedback_rows([Feedback("f", 1.7e9, "t", "r", "a", "click")], 1)
    with pytest.raises(SinkBackpressure) as first:
        sink.write(rows)
    with pytest.raises(SinkBackpressure) as second:
        sink.write(rows)
    assert second.value.retry_after > first.value.retry_after
    ch.down = False
    assert sink.write(rows).written == 1


def test_a_schema_error_is_fatal_and_names_the_table():
    class NoTable:
        def insert(self, table, columns, rows):
            raise RuntimeError("Code: 60. DB::Exception: Table aimass.feedback doesn't exist. "
                               "(UNKNOWN_TABLE)")

    with pytest.raises(SinkFatal) as err:
        TableSink(NoTable(), schema.FEEDBACK).write(
            batches.feedback_rows([Feedback("f", 1.7e9, "t", "r", "a", "click")], 1))
    assert err.value.table == "feedback"


def test_a_row_missing_a_column_names_it():
    with pytest.raises(SinkFatal) as err:
        TableSink(RefusingClickHouse(), schema.FEEDBACK).write([{"tenant": "t"}])
    assert err.value.column == "feedback_id"


