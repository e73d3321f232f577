"""ClickHouse tables. The DDL is valid on ClickHouse 18.16 (Debian) and on current ClickHouse
(chdb): plain MergeTree with PARTITION BY / ORDER BY, no LowCardinality, no DateTime64, no JSON
type (feature maps are stored as JSON text)."""

from __future__ import annotations

from dataclasses import dataclass

from .clickhouse import ClickHouse


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    partition_by: str = "toYYYYMM(event_time)"

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c} {t}" for c, t in self.columns)
        return (f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n) ENGINE = MergeTree() "
                f"PARTITION BY {self.partition_by} ORDER BY ({self.order_by})")


AD_REQUESTS = Table("ad_requests", (
    ("tenant", "String"), ("request_id", "String"), ("event_time", "DateTime"),
    ("user_id", "String"), ("candidate_ids", "Array(String)"), ("user", "String"),
    ("context", "String"), ("candidates", "String"), ("priority", "UInt8"),
    ("ingested_at", "DateTime"),
), "tenant, event_time, request_id")

FEEDBACK = Table("feedback", (
    ("tenant", "String"), ("feedback_id", "String"), ("request_id", "String"),
    ("ad_id", "String"), ("kind", "String"), ("event_time", "DateTime"),
    ("ingested_at", "DateTime"),
), "tenant, event_time, request_id")

EXAMPLES = Table("examples", (
    ("tenant", "String"), ("example_id", "String"), ("event_time", "DateTime"),
    ("label", "UInt8"), ("source", "String"), ("features", "String"),
    ("ingested_at", "DateTime"),
), "tenant, event_time, example_id")

DEAD_LETTERS = Table("dead_letters", (
    ("source_topic", "String"), ("partition", "Int32"), ("offset", "Int64"),
    ("field", "String"), ("reason", "String"), ("payload", "String"),
    ("event_time", "DateTime"),
), "source_topic, event_time")

TABLES = (AD_REQUESTS, FEEDBACK, EXAMPLES, DEAD_LETTERS)


def create_schema(ch: ClickHouse) -> list[str]:
    """Create every table that is missing (idempotent); returns the table names."""
    for table in TABLES:
        ch.execute(table.ddl())
    return [t.name for t in TABLES]
