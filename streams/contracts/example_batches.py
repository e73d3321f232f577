"""The examples topic carries micro-batches: one Kafka record per tenant and batch, columnar.

The examples topic is internal (the join and the training forwarder write it, the trainer
reads it), so it need not carry one event per record as the external topics do. A record is
the JSON object ``{"v": 1, "tenant": T, "id": [...], "event_time": [...], "label": [...],
"source": [...], "features": [{...}, ...]}`` (and ``"test"`` and ``"weight"`` columns when a
row of the batch is a test row or weighs other than 1), keyed by the tenant: the order within a record
and across a partition is the order the trainer learns in. Per example everything holds as
before: its id (learned once), its validation (the limits of :mod:`streams.contracts.fields`),
its own dead letter when it is malformed. A record that is not a batch at all is one dead
letter.

>>> from streams.contracts.events import TrainingExample
>>> exs = [TrainingExample(f"e{i}", 1.7e9, "acme", {"x": i}, i % 2) for i in range(3)]
>>> [(key, len(value) > 0) for key, value in encode_examples(exs)]
[(b'acme', True)]
>>> good, bad = decode_examples(encode_examples(exs)[0][1])
>>> [(e.id, e.label, e.features) for e in good], bad
([('e0', 0, {'x': 0}), ('e1', 1, {'x': 1}), ('e2', 0, {'x': 2})], [])
"""

from __future__ import annotations

import math
import time

import orjson

from streams.contracts.events import TrainingExample, parse_object
from streams.contracts.fields import (
    MAX_CLOCK_SKEW,
    MAX_FEATURES,
    MAX_ID,
    InvalidEvent,
    tenant,
    values_ok,
    weight_ok,
)

VERSION = 1
MAX_BATCH = 5000  # examples per record (a record stays far below the topic's message size)
COLUMNS = ("id", "event_time", "label", "source", "features")


def encode_examples(examples: list[TrainingExample]) -> list[tuple[bytes, bytes]]:
    """(key, value) records of ``examples``: one per tenant and ``MAX_BATCH`` examples, in
    their order."""
    by_tenant: dict[str, list[TrainingExample]] = {}
    for ex in examples:
        by_tenant.setdefault(ex.tenant, []).append(ex)
    out = []
    for t, exs in by_tenant.items():
        for i in range(0, len(exs), MAX_BATCH):
            part = exs[i:i + MAX_BATCH]
            record = {
                "v": VERSION, "tenant": t, "id": [e.id for e in part],
                "event_time": [e.event_time for e in part], "label": [e.label for e in part],
                "source": [e.source for e in part], "features": [e.features for e in part]}
            if any(e.test for e in part):  # (only then: most batches have no test rows)
                record["test"] = [e.test for e in part]
            if any(e.weight != 1.0 for e in part):  # (likewise: most examples weigh 1)
                record["weight"] = [e.weight for e in part]
            out.append((t.encode(), orjson.dumps(record)))
    return out


def decode_examples(raw: bytes | None) -> tuple[list[TrainingExample],
                                                  list[tuple[int, dict | None, InvalidEvent]]]:
    """The examples of one record, and the ones refused: (index, the row as given, error);
    index -1 when the record itself is not a batch (raises nothing)."""
    try:
        if raw is None:
            raise InvalidEvent("value", "is empty (a tombstone or a null message)")
        d = parse_object(raw)
        if d.get("v") != VERSION:
            raise InvalidEvent("v", f"must be {VERSION} (an examples batch), got {d.get('v')!r}")
        t = tenant(d)
        cols = [d.get(c) for c in COLUMNS]
        if not all(isinstance(c, list) for c in cols):
            missing = next(c for c, v in zip(COLUMNS, cols, strict=True) if not isinstance(v, list))
            raise InvalidEvent(missing, "must be a list")
        n = len(cols[0])
        if n > MAX_BATCH or any(len(c) != n for c in cols):
            raise InvalidEvent("id", f"columns must have one length, at most {MAX_BATCH}")
        tests = d.get("test", [False] * n)  # optional columns
        if not isinstance(tests, list) or len(tests) != n:
            raise InvalidEvent("test", f"must be a list of {n} true/false values")
        weights = d.get("weight", [1.0] * n)
        if not isinstance(weights, list) or len(weights) != n:
            raise InvalidEvent("weight", f"must be a list of {n} numbers")
    except InvalidEvent as exc:
        return [], [(-1, None, exc)]
    ids, times, labels, sources, feats = cols
    if _all_valid(ids, times, labels, sources, feats) and \
            all(v.__class__ is bool for v in tests) and \
            all(weight_ok(w) for w in weights):
        return [TrainingExample(i, float(tm), t, f, lb, s, ts, float(w)) for i, tm, lb, s, f, ts, w
                in zip(ids, times, labels, sources, feats, tests, weights, strict=True)], []
    good, bad = [], []  # something is off: each row on its own, the bad ones named
    for i in range(n):
        row = {"id": ids[i], "event_time": times[i], "tenant": t, "label": labels[i],
               "source": sources[i], "features": feats[i], "test": tests[i],
               "weight": weights[i]}
        try:
            good.append(TrainingExample.from_dict(row))
        except InvalidEvent as exc:
            bad.append((i, row, InvalidEvent(f"examples[{i}].{exc.field}", exc.reason)))
    return good, bad


def decode_example_batches(raws: list, now: float) -> tuple[list[TrainingExample], list]:
    """The examples of many consumed records (:class:`streams.contracts.batches.Raw`), in
    order, and a dead letter for each refused row (or record)."""
    from streams.contracts.events import dead_letter

    good, bad = [], []
    for r in raws:
        exs, refused = decode_examples(r.value)
        good += exs
        for i, row, exc in refused:
            payload = r.value if row is None else orjson.dumps(row, default=str)
            letter = dead_letter(payload, exc, r.topic, r.partition, r.offset, now, r.key,
                                 r.headers)
            if i >= 0:
                letter.id = f"{letter.id}/{i}"
            bad.append(letter)
    return good, bad


def _all_valid(ids, times, labels, sources, feats) -> bool:
    """Every row within the limits, checked column by column (the fast path)."""
    latest = time.time() + MAX_CLOCK_SKEW
    return (all(i.__class__ is str and 0 < len(i) <= MAX_ID for i in ids)
            and all((t.__class__ is float or t.__class__ is int) and 0 <= t <= latest
                    and math.isfinite(t) for t in times)
            and all(lb.__class__ is int and (lb == 0 or lb == 1) for lb in labels)
            and all(s.__class__ is str and 0 < len(s) <= 64 for s in sources)
            and all(f.__class__ is dict and len(f) <= MAX_FEATURES and values_ok(f)
                    for f in feats))
