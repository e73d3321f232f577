"""Prometheus metrics, built by a function that takes a registry (tests pass a fresh one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)


@dataclass
class Metrics:
    consumed: Counter
    produced: Counter
    dead_letters: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    sink_rows: Counter
    sink_backpressure: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(
        consumed=Counter("aimass_events_consumed_total", "Events consumed, by topic",
                         ["topic"], registry=registry),
        produced=Counter("aimass_events_produced_total", "Events produced, by topic",
                         ["topic"], registry=registry),
        dead_letters=Counter("aimass_dead_letters_total", "Events sent to the dead-letter topic",
                             ["topic", "field"], registry=registry),
        batch_size=Histogram("aimass_batch_size", "Events per micro-batch, by topic", ["topic"],
                             buckets=BATCH_BUCKETS, registry=registry),
        batch_seconds=Histogram("aimass_batch_seconds", "Time to process one micro-batch",
                                ["topic"], registry=registry),
        sink_rows=Counter("aimass_sink_rows_total", "Rows written to ClickHouse, by table",
                          ["table"], registry=registry),
        sink_backpressure=Counter("aimass_sink_backpressure_total",
                                  "Batches a sink pushed back (retried), by table", ["table"],
                                  registry=registry),
    )
