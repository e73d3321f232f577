"""ClickHouse tables. The DDL is valid on ClickHouse 18.16 (Debian) and on current ClickHouse
(chdb): MergeTree family with PARTITION BY / ORDER BY, no LowCardinality, no DateTime64, no JSON
type (feature maps are stored as JSON text).

Tables that a restarted worker may write again (it resumes from the last checkpoint and replays
the uncommitted tail) are ReplacingMergeTree on their natural key: duplicates collapse in
merges, and exact counts use ``FINAL`` or ``uniqExact``.

A column added since a table was first made (``weight``, ``letter_id``) is added to the existing
table by :func:`create_schema` with its default, so an older deployment upgrades in place; one
that joins the sorting key (``letter_id``: every dead letter its own row, where letters of one
record or of no record shared a key and merged away) joins it in the same ALTER.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .clickhouse import ClickHouse

_INT_RANGES = {"UInt8": (0, 2**8 - 1), "UInt32": (0, 2**32 - 1), "UInt64": (0, 2**64 - 1),
               "Int32": (-2**31, 2**31 - 1), "Int64": (-2**63, 2**63 - 1),
               "DateTime": (0, 2**32 - 1)}


def value_problem(ch_type: str, v) -> str | None:
    """Why ``v`` cannot be stored in a column of ``ch_type``, or None.

    >>> value_problem("DateTime", 2**32), value_problem("UInt8", 3), value_problem("String", 1)
    ('4294967296 is out of range for DateTime', None, 'a int where a String goes')
    """
    if ch_type in _INT_RANGES:
        lo, hi = _INT_RANGES[ch_type]
        if isinstance(v, bool) or not isinstance(v, int):
            return f"a {type(v).__name__} where an integer ({ch_type}) goes"
        return None if lo <= v <= hi else f"{v} is out of range for {ch_type}"
    if ch_type.startswith("Float"):
        if not isinstance(v, int | float) or isinstance(v, bool):
            return f"a {type(v).__name__} where a number ({ch_type}) goes"
        return None if ch_type == "Float64" or not math.isfinite(v) or abs(v) < 3.4e38 else \
            f"{v} is out of range for {ch_type}"
    if ch_type == "String":
        return None if isinstance(v, str) else f"a {type(v).__name__} where a String goes"
    if ch_type.startswith("Array("):
        if not isinstance(v, list | tuple):
            return f"a {type(v).__name__} where an array goes"
        inner = ch_type[6:-1]
        return next((p for x in v if (p := value_problem(inner, x))), None)
    return None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    engine: str = "MergeTree()"
    partition_by: str = "toYYYYMM(event_time)"
    defaults: tuple[tuple[str, str], ...] = ()  # column -> DEFAULT expression

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def explain(self, row: dict) -> tuple[str | None, str | None]:
        """(column, reason) of the first value of ``row`` its column cannot hold."""
        for name, ch_type in self.columns:
            if name not in row:
                return name, "missing"
            problem = value_problem(ch_type, row[name])
            if problem:
                return name, problem
        return None, None

    def column_ddl(self, name: str, ch_type: str) -> str:
        default = dict(self.defaults).get(name)
        return f"{name} {ch_type}" + (f" DEFAULT {default}" if default else "")

    def ddl(self) -> str:
        cols = ",\n  ".join(self.column_ddl(c, t) for c, t in self.columns)
        return (f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n) ENGINE = {self.engine} "
                f"PARTITION BY {self.partition_by} ORDER BY ({self.order_by})")


AD_REQUESTS = Table("ad_requests", (
    ("tenant", "String"), ("request_id", "String"), ("event_time", "DateTime"),
    ("user_id", "String"), ("candidate_ids", "Array(String)"), ("user", "String"),
    ("context", "String"), ("candidates", "String"), ("priority", "UInt8"),
    ("ingested_at", "DateTime"),
), "tenant, request_id", "ReplacingMergeTree(ingested_at)")

FEEDBACK = Table("feedback", (
    ("tenant", "String"), ("feedback_id", "String"), ("request_id", "String"),
    ("ad_id", "String"), ("kind", "String"), ("event_time", "DateTime"),
    ("ingested_at", "DateTime"),
), "tenant, feedback_id", "ReplacingMergeTree(ingested_at)")

EXAMPLES = Table("examples", (
    ("tenant", "String"), ("example_id", "String"), ("event_time", "DateTime"),
    ("label", "UInt8"), ("source", "String"), ("holdout", "UInt8"), ("features", "String"),
    ("ingested_at", "DateTime"), ("weight", "Float32"),
), "tenant, example_id", "ReplacingMergeTree(ingested_at)", defaults=(("weight", "1"),))

PREDICTIONS = Table("predictions", (
    ("tenant", "String"), ("model", "String"), ("example_id", "String"),
    ("event_time", "DateTime"), ("p", "Float32"), ("label", "UInt8"), ("holdout", "UInt8"),
    ("model_version", "UInt64"), ("ingested_at", "DateTime"), ("weight", "Float32"),
), "tenant, model, example_id", "ReplacingMergeTree(ingested_at)", defaults=(("weight", "1"),))

MODEL_METRICS = Table("model_metrics", (
    ("ts", "DateTime"), ("tenant", "String"), ("model", "String"), ("examples", "UInt64"),
    ("logloss", "Float64"), ("auc", "Float64"), ("accuracy", "Float64"),
    ("mean_p", "Float64"), ("ctr", "Float64"), ("window_logloss", "Float64"),
    ("window_auc", "Float64"), ("holdout_examples", "UInt64"), ("holdout_logloss", "Float64"),
    ("holdout_auc", "Float64"), ("drifts", "UInt32"), ("examples_per_s", "Float64"),
), "tenant, model, ts", partition_by="toYYYYMM(ts)")

DEAD_LETTERS = Table("dead_letters", (
    ("source_topic", "String"), ("partition", "Int32"), ("offset", "Int64"),
    ("field", "String"), ("reason", "String"), ("payload", "String"),
    ("event_time", "DateTime"), ("letter_id", "String"),
), "source_topic, partition, offset, letter_id", "ReplacingMergeTree()")

AUDIT = Table("audit", (
    ("audit_id", "String"), ("event_time", "DateTime"), ("actor", "String"),
    ("action", "String"), ("tenant", "String"), ("detail", "String"), ("ingested_at", "DateTime"),
), "tenant, event_time, audit_id", "ReplacingMergeTree(ingested_at)")

TABLES = (AD_REQUESTS, FEEDBACK, EXAMPLES, PREDICTIONS, MODEL_METRICS, DEAD_LETTERS, AUDIT)


def create_schema(ch: ClickHouse) -> list[str]:
    """Create every table that is missing and add the columns a table lacks (idempotent);
    returns the table names."""
    for table in TABLES:
        ch.execute(table.ddl())
        have = {r[0] for r in ch.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            f"AND table = '{table.name}'")}
        for name, ch_type in table.columns:
            if name in have:
                continue
            keyed = name in [c.strip() for c in table.order_by.split(",")]
            ch.execute(f"ALTER TABLE {table.name} ADD COLUMN {table.column_ddl(name, ch_type)}"
                       + (f", MODIFY ORDER BY ({table.order_by})" if keyed else ""))
    return [t.name for t in TABLES]
