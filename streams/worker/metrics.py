"""Prometheus metrics, built by a function that takes a registry (tests pass a fresh one)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    joined: Counter
    join_dropped: Counter
    join_pending: Gauge
    join_merge_held: Gauge
    learned: Counter
    duplicates: Counter
    learn_seconds: Histogram
    checkpoint_seconds: Histogram
    model_logloss: Gauge
    model_auc: Gauge
    model_calibration: Gauge
    model_examples: Gauge
    model_version: Gauge
    assigned: Gauge
    checkpointed: Gauge
    expired: Counter
    already_served: Counter
    lag: Gauge
    alerts: Counter
    rollbacks: Counter
    phase: Gauge
    ensemble_weight: Gauge
    errors: Counter
    state_rejected: Counter
    late: Counter
    refused: Counter
    nonfinite: Counter
    misplaced: Counter
    dedup_ids: Gauge
    dedup_floor: Gauge
    dedup_horizon: Gauge
    examples_read: Counter
    batch_wait: Histogram
    rebalances: Counter


def build_metrics(registry: CollectorRegistry) -> Metrics:
    def counter(name, doc, labels=()):
        return Counter(name, doc, list(labels), registry=registry)

    def gauge(name, doc, labels=()):
        return Gauge(name, doc, list(labels), registry=registry)

    return Metrics(
        consumed=counter("aimass_events_consumed_total", "Events consumed, by topic", ["topic"]),
        produced=counter("aimass_events_produced_total", "Events produced, by topic", ["topic"]),
        dead_letters=counter("aimass_dead_letters_total", "Events sent to the dead-letter topic",
                             ["topic", "field"]),
        batch_size=Histogram("aimass_batch_size", "Events per micro-batch, by stage", ["stage"],
                             buckets=BATCH_BUCKETS, registry=registry),
        batch_seconds=Histogram("aimass_batch_seconds", "Time to process one micro-batch",
                                ["stage"], registry=registry),
        sink_rows=counter("aimass_sink_rows_total", "Rows written to ClickHouse", ["table"]),
        sink_backpressure=counter("aimass_sink_backpressure_total",
                                  "Batches a sink pushed back (retried)", ["table"]),
        joined=counter("aimass_examples_joined_total", "Examples made by the join", ["label"]),
        join_dropped=counter("aimass_join_dropped_total", "Feedback the join dropped",
                             ["reason"]),
        join_pending=gauge("aimass_join_pending_requests", "Requests waiting in the join"),
        join_merge_held=gauge("aimass_join_merge_held_examples", "Joined examples waiting for "
                              "the other partitions to reach their request time"),
        learned=counter("aimass_examples_learned_total", "Examples learned, by tenant",
                        ["tenant"]),
        duplicates=counter("aimass_examples_duplicate_total",
                           "Examples skipped: their id was already learned", ["tenant"]),
        learn_seconds=Histogram("aimass_learn_seconds", "Predict+learn time of one batch",
                                ["model"], registry=registry),
        checkpoint_seconds=Histogram("aimass_checkpoint_seconds", "Time to write a checkpoint",
                                     registry=registry),
        model_logloss=gauge("aimass_model_logloss", "Progressive log loss",
                            ["tenant", "model", "scope"]),
        model_auc=gauge("aimass_model_auc", "Progressive ROC AUC", ["tenant", "model", "scope"]),
        model_calibration=gauge("aimass_model_calibration_ratio",
                                "Mean predicted CTR / observed CTR", ["tenant", "model"]),
        model_examples=gauge("aimass_model_examples", "Examples scored", ["tenant", "model"]),
        model_version=gauge("aimass_model_version", "Model set version (batches learned)",
                            ["tenant"]),
        assigned=gauge("aimass_assigned_partitions", "Partitions this worker consumes"),
        alerts=counter("aimass_model_alerts_total", "Overfitting/degrading alerts",
                       ["tenant", "model", "reason"]),
        rollbacks=counter("aimass_model_rollbacks_total", "Models rolled back to their best "
                          "holdout state", ["tenant", "model"]),
        phase=gauge("aimass_training_phase", "Deep models: 1 co-training, 2 joint",
                    ["tenant", "model"]),
        ensemble_weight=gauge("aimass_ensemble_weight", "Weight of a member in an ensemble",
                              ["tenant", "ensemble", "member"]),
        already_served=counter("aimass_requests_already_served_total", "Requests a serving "
                               "replica answered (logged for the join, not scored again)",
                               ["tenant"]),
        expired=counter("aimass_requests_expired_total",
                        "Kafka requests dropped: past their deadline before scoring"),
        lag=gauge("aimass_consumer_lag", "The broker's end offset minus the worker group's "
                  "committed offset, per partition", ["topic", "partition"]),
        checkpointed=gauge("aimass_checkpoint_examples", "Examples handled (learned, or "
                           "held out) as of the last checkpoint", ["tenant"]),
        errors=counter("aimass_errors_total", "Exceptions caught, by component and kind "
                       "(retryable: waited out; fatal_row: a row to the dead letters)",
                       ["component", "kind"]),
        state_rejected=counter("aimass_state_rejected_total", "Model state messages not read "
                               "(unsigned, another key, old format, malformed)",
                               ["topic", "reason"]),
        late=counter("aimass_examples_late_total", "Examples older than the exactly-once "
                     "horizon whose id is no longer remembered: dead-lettered, not learned",
                     ["tenant"]),
        refused=counter("aimass_examples_refused_total", "Examples with a value of the wrong "
                        "type for the tenant's column: dead-lettered, not learned", ["tenant"]),
        nonfinite=counter("aimass_nonfinite_predictions_total", "Predictions that were not a "
                          "finite probability (replaced by 0.5 in metrics and ensembles)",
                          ["tenant", "model"]),
        misplaced=counter("aimass_events_misplaced_total", "Events found on another partition "
                          "than murmur2 of their request id gives: joined there (rerouted) or "
                          "forwarded to it", ["topic", "action"]),
        dedup_ids=gauge("aimass_dedup_ids", "Example ids remembered for exactly-once",
                        ["tenant"]),
        dedup_floor=gauge("aimass_dedup_floor_seconds", "Event time at or before which an "
                          "unremembered id is late (exactly-once horizon)", ["tenant"]),
        rebalances=counter("aimass_rebalances_total", "Consumer group rebalances this worker "
                           "went through"),
        batch_wait=Histogram("aimass_batch_wait_seconds", "Time an agent waited for its next "
                             "batch", ["agent"], registry=registry),
        examples_read=counter("aimass_examples_read_total", "Examples read by the train stage "
                              "(the examples topic carries batches of them)"),
        dedup_horizon=gauge("aimass_dedup_horizon_seconds", "Configured exactly-once horizon "
                            "(seconds of event time; see also aimass_dedup_capacity)"),
    )


def field_label(field: str) -> str:
    """A dead letter's field as a metric label with bounded values: indices and feature
    names dropped.

    >>> field_label("candidates[12].features.genre"), field_label("user.x"), field_label("tenant")
    ('candidates[].features', 'user', 'tenant')
    """
    label = re.sub(r"\[\d+\]", "[]", field)
    for container in ("features", "user", "context"):
        if label.startswith(container + ".") or f".{container}." in label:
            head = label.split(f"{container}.", 1)[0]
            return head + container
    return label[:64]
