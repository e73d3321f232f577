"""Kafka-free batch functions: raw messages in, validated records and dead letters out, and the
rows each table stores. The Faust agents only move batches between Kafka and these functions."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from streams.contracts.events import AdRequest, DeadLetter, Feedback, TrainingExample, dead_letter, decode


@dataclass(slots=True)
class Raw:
    """One consumed message, as the agent saw it."""

    value: bytes | None
    topic: str
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    headers: list | None = None

    @classmethod
    def of(cls, event) -> Raw:
        """A Faust event's message."""
        m = event.message
        return cls(event.value, m.topic, m.partition, m.offset, m.key, m.headers)


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
            bad.append(dead_letter(r.value, exc, r.topic, r.partition, r.offset, now, r.key,
                                   r.headers))
    return good, bad


def _json(d: dict) -> str:
    return orjson.dumps(d).decode()


def request_rows(reqs: list[AdRequest], now: int) -> list[dict]:
    return [{"tenant": r.tenant, "request_id": r.id, "event_time": int(r.event_time),
             "user_id": str(r.user.get("user_id", "")),
             "candidate_ids": [c.ad_id for c in r.candidates], "user": _json(r.user),
             "context": _json(r.context), "candidates": orjson.dumps(r.candidates).decode(),
             "priority": r.priority, "ingested_at": now} for r in reqs]


def feedback_rows(fbs: list[Feedback], now: int) -> list[dict]:
    return [{"tenant": f.tenant, "feedback_id": f.id, "request_id": f.request_id,
             "ad_id": f.ad_id, "kind": f.kind, "event_time": int(f.event_time),
             "ingested_at": now} for f in fbs]


def example_rows(exs: list[TrainingExample], now: int, holdout=None) -> list[dict]:
    hold = holdout if holdout is not None else [False] * len(exs)
    return [{"tenant": e.tenant, "example_id": e.id, "event_time": int(e.event_time),
             "label": e.label, "source": e.source, "holdout": int(h),
             "features": _json(e.features), "ingested_at": now, "weight": e.weight}
            for e, h in zip(exs, hold, strict=True)]


def prediction_rows(tenant: str, result, version: int, now: int) -> list[dict]:
    """One row per (model, example): the probability it gave before learning the label."""
    rows = []
    for model, p in result.predictions.items():
        for ex, pi, h in zip(result.examples, p.tolist(), result.holdout.tolist(), strict=True):
            rows.append({"tenant": tenant, "model": model, "example_id": ex.id,
                         "event_time": int(ex.event_time), "p": pi, "label": ex.label,
                         "holdout": int(h), "model_version": version, "ingested_at": now,
                         "weight": ex.weight})
    return rows


def metric_rows(tenant: str, metrics: dict[str, dict], now: int) -> list[dict]:
    def f(v):
        return float(v) if v == v else 0.0  # NaN (nothing to measure yet) is stored as 0

    return [{"ts": now, "tenant": tenant, "model": model, "examples": m["examples"],
             "logloss": f(m["logloss"]), "auc": f(m["auc"]), "accuracy": f(m["accuracy"]),
             "mean_p": f(m["mean_p"]), "ctr": f(m["ctr"]),
             "window_logloss": f(m["window_logloss"]), "window_auc": f(m["window_auc"]),
             "holdout_examples": m["holdout_examples"],
             "holdout_logloss": f(m["holdout_logloss"]), "holdout_auc": f(m["holdout_auc"]),
             "drifts": m["drifts"], "examples_per_s": f(m["examples_per_s"])}
            for model, m in metrics.items()]


def dead_letter_rows(dls: list[DeadLetter]) -> list[dict]:
    return [{"source_topic": d.source_topic, "partition": d.partition, "offset": d.offset,
             "field": d.field, "reason": d.reason, "payload": d.payload,
             "event_time": int(d.event_time), "letter_id": d.id} for d in dls]
