"""The ClickHouse DDL and inserts run on ClickHouse server 18.16 and on chdb alike."""

from __future__ import annotations

import pytest

from sinks import schema
from sinks.clickhouse import connect
from sinks.table import TableSink
from streams.contracts import batches
from streams.contracts.events import AdRequest, Candidate, Feedback, TrainingExample

pytestmark = pytest.mark.services


def test_ddl_runs_and_is_idempotent(fresh):
    ch = connect(fresh.clickhouse_dsn)
    try:
        assert schema.create_schema(ch) == [t.name for t in schema.TABLES]
        schema.create_schema(ch)  # twice is fine
        names = {r[0] for r in ch.query(
            f"SELECT name FROM system.tables WHERE database = '{ch.database}'")}
        assert {t.name for t in schema.TABLES} <= names
    finally:
        ch.close()


def test_rows_round_trip_through_sinks(fresh):
    ch = connect(fresh.clickhouse_dsn)
    try:
        schema.create_schema(ch)
        reqs = [AdRequest(f"r{i}", 1.7e9 + i, "acme", {"user_id": "u1", "age": 30},
                          [Candidate("a", {"g": "Drama"}), Candidate("b")]) for i in range(100)]
        fbs = [Feedback(f"f{i}", 1.7e9 + i, "acme", f"r{i}", "a", "click") for i in range(40)]
        exs = [TrainingExample(f"e{i}", 1.7e9, "acme", {"x": i}, i % 2) for i in range(10)]
        assert TableSink(ch, schema.AD_REQUESTS).write(batches.request_rows(reqs, 1)).written == 100
        assert TableSink(ch, schema.FEEDBACK).write(batches.feedback_rows(fbs, 1)).written == 40
        assert TableSink(ch, schema.EXAMPLES).write(batches.example_rows(exs, 1)).written == 10
        assert ch.query("SELECT count(), uniqExact(request_id) FROM ad_requests") == [(100, 100)]
        assert ch.query("SELECT candidate_ids FROM ad_requests WHERE request_id = 'r7'") == [
            (["a", "b"],)]
        assert ch.query("SELECT sum(label) FROM examples") == [(5,)]
        joined = ch.query("SELECT count() FROM ad_requests AS r INNER JOIN feedback AS f "
                          "ON r.request_id = f.request_id")
        assert joined == [(40,)]
    finally:
        ch.close()


def test_a_table_made_before_a_column_existed_gets_it_with_its_default(fresh):
    ch = connect(fresh.clickhouse_dsn)
    try:
        old = schema.Table("examples", tuple(c for c in schema.EXAMPLES.columns if c[0] != "weight"),
                           schema.EXAMPLES.order_by, schema.EXAMPLES.engine)
        ch.execute(old.ddl())
        ch.insert("examples", old.column_names, [("acme", "old", 1_700_000_000, 1, "user", 0, "{}",
                                                  1_700_000_000)])
        schema.create_schema(ch)
        schema.create_schema(ch)  # twice is fine
        exs = [TrainingExample("new", 1.7e9, "acme", {}, 1, weight=2.5)]
        assert TableSink(ch, schema.EXAMPLES).write(batches.example_rows(exs, 1)).written == 1
        assert ch.query("SELECT example_id, weight FROM examples ORDER BY example_id") == [
            ("new", 2.5), ("old", 1.0)]
    finally:
        ch.close()


def test_dead_letters_of_one_record_or_of_none_stay_apart(fresh):
    """Letters refused after they were read (late, orphaned, the wrong type) share the
    partition -1 and offset -1; each keeps its row, also in a table made before letter_id."""
    from streams.contracts.events import InvalidEvent, dead_letter

    ch = connect(fresh.clickhouse_dsn)
    try:
        old = schema.Table("dead_letters", schema.DEAD_LETTERS.columns[:-1],
                           "source_topic, partition, offset", schema.DEAD_LETTERS.engine)
        ch.execute(old.ddl())
        schema.create_schema(ch)
        letters = [dead_letter(b"{}", InvalidEvent("features.x", "wrong"), "examples", now=1.7e9,
                               event_id=f"e{i}") for i in range(3)]
        TableSink(ch, schema.DEAD_LETTERS).write(batches.dead_letter_rows(letters))
        ch.execute("OPTIMIZE TABLE dead_letters FINAL")
        assert ch.query("SELECT letter_id FROM dead_letters ORDER BY letter_id") == [
            ("examples/e0",), ("examples/e1",), ("examples/e2",)]
    finally:
        ch.close()
