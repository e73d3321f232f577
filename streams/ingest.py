"""Kafka-free batch functions: raw messages in, validated records and dead letters out, and the
rows each table stores. The Faust agents only move batches between Kafka and these functions."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from .events import AdRequest, DeadLetter, Feedback, TrainingExample, dead_letter, decode


@dataclass(slots=True)
class Raw:
    """One consumed message, as the agent saw it."""

    value: bytes | None
    topic: str
    partition: int = -1
    offset: int = -1


def decode_batch(cls: type, raws: list[Raw], now: float) -> tuple[list, list[DeadLetter]]:
    """Validate every message; the bad ones become dead letters, none is lost."""
    good, bad = decode_batch_indexed(cls, raws, now)
    return [rec for _, rec in good], bad


def decode_batch_indexed(cls: type, raws: list[Raw], now: float
                         ) -> tuple[list[tuple[int, object]], list[DeadLetter]]:
    """Like :func:`decode_batch`, with each good record's index in ``raws``."""
    good, bad = [], []
    for i, r in enumerate(raws):
        try:
            good.append((i, decode(cls, r.value)))
        except Exception as exc:  # any failure at all is a dead letter, never a crash
            bad.append(dead_letter(r.value, exc, r.topic, r.partition, r.offset, now))
    return good, bad


def _json(d: dict) -> str:
    return orjson.dumps(d).decode()


def request_rows(reqs: list[AdRequest], now: int) -> list[tuple]:
    return [(r.tenant, r.id, int(r.event_time), str(r.user.get("user_id", "")),
             [c.ad_id for c in r.candidates], _json(r.user), _json(r.context),
             orjson.dumps(r.candidates).decode(), r.priority, now) for r in reqs]


def feedback_rows(fbs: list[Feedback], now: int) -> list[tuple]:
    return [(f.tenant, f.id, f.request_id, f.ad_id, f.kind, int(f.event_time), now) for f in fbs]


def example_rows(exs: list[TrainingExample], now: int, holdout=None) -> list[tuple]:
    hold = holdout if holdout is not None else [False] * len(exs)
    return [(e.tenant, e.id, int(e.event_time), e.label, e.source, int(h), _json(e.features), now)
            for e, h in zip(exs, hold, strict=True)]


def prediction_rows(tenant: str, result, version: int, now: int) -> list[tuple]:
    """One row per (model, example): the probability it gave before learning the label."""
    rows = []
    for model, p in result.predictions.items():
        for ex, pi, h in zip(result.examples, p.tolist(), result.holdout.tolist(), strict=True):
            rows.append((tenant, model, ex.id, int(ex.event_time), pi, ex.label, int(h), version,
                         now))
    return rows


def metric_rows(tenant: str, metrics: dict[str, dict], now: int) -> list[tuple]:
    def f(v):
        return float(v) if v == v else 0.0  # NaN (nothing to measure yet) is stored as 0

    return [(now, tenant, model, m["examples"], f(m["logloss"]), f(m["auc"]), f(m["accuracy"]),
             f(m["mean_p"]), f(m["ctr"]), f(m["window_logloss"]), f(m["window_auc"]),
             m["holdout_examples"], f(m["holdout_logloss"]), f(m["holdout_auc"]), m["drifts"],
             f(m["examples_per_s"])) for model, m in metrics.items()]


def dead_letter_rows(dls: list[DeadLetter]) -> list[tuple]:
    return [(d.source_topic, d.partition, d.offset, d.field, d.reason, d.payload,
             int(d.event_time)) for d in dls]
