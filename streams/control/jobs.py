"""What each kind of task does (:mod:`streams.control.runner` runs them): send a labelled file
or a database query's rows to the training topic, score a labelled file with the tenant's
models without learning it (every row a test row: its figures are the ``test_*`` metrics), or
write a tenant's model snapshot to a file. Each resumes from the rows already done (ids are
stable, and learning is idempotent by id, so a chunk sent twice is learned once) and reports
progress after every chunk."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from streams.contracts.events import encode
from streams.contracts.fields import MAX_ID
from streams.contracts.topics import topic_names

CHUNK = 2000


def handlers(settings, key: bytes) -> dict:
    return {"train-file": lambda t, s, p: train_file(settings, t, s, p),
            "evaluate": lambda t, s, p: train_file(settings, t, s, p, evaluate=True),
            "backfill": lambda t, s, p: backfill(settings, t, s, p),
            "export": lambda t, s, p: export(settings, key, t, s, p),
            "replay": lambda t, s, p: replay(settings, t, s, p)}


class Sender:
    """Examples to the training topic, one producer per task, confirmed chunk by chunk (the
    progress recorded after a chunk is what the broker has)."""

    def __init__(self, settings):
        from streams.producer import EventProducer

        self.producer = EventProducer(settings)
        self.topic = topic_names(settings)["training"]
        self.dead = topic_names(settings)["dead-letters"]

    def send(self, tenant: str, examples, dead_letters=()) -> None:
        for ex in examples:
            self.producer.send(self.topic, tenant, ex)  # one partition per tenant: in order
        for d in dead_letters:
            self.producer.send_raw(self.dead, d.kafka_key, encode(d))
        self.producer.flush(what="task examples")


def train_file(settings, task, start: int, progress, evaluate: bool = False) -> int:
    from dataclasses import replace

    from streams.sources import webhdfs
    from streams.sources.files import examples_from_file

    p = task.params
    with webhdfs.local_file(p["path"]) as path:  # ids come from the file's bytes: a copy
        if not path.exists():                    # fetched again after a restart has the same
            raise ValueError(f"{path}: no such file on the worker")
        examples = examples_from_file(path, p["label"], task.tenant, positive=p.get("positive"),
                                      time_column=p.get("time_column"),
                                      test_share=float(p.get("test_share", 0.0)),
                                      weight_column=p.get("weight_column"))
    if evaluate:  # scored by every model, learned by none; ids of their own
        examples = [replace(e, id=f"eval-{task.id}-{e.id}", test=True) for e in examples]
    total, out = len(examples), Sender(settings)
    pace = Pace(p.get("rate"))
    progress(start, total)
    for i in range(start, total, CHUNK):
        out.send(task.tenant, examples[i:i + CHUNK])
        progress(min(i + CHUNK, total), total)
        pace.sent(min(CHUNK, total - i))
    return total


class Pace:
    """At most ``rate`` rows per second on average (None: as fast as the broker takes them),
    so a large file learned beside live traffic leaves the workers room for it.

    >>> import time
    >>> pace, t = Pace(4000), time.monotonic()
    >>> for _ in range(3):
    ...     pace.sent(1000)
    >>> time.monotonic() - t >= 3000 / 4000  # never ahead of the rate
    True
    """

    def __init__(self, rate: float | None):
        self.rate = rate
        self.started = time.monotonic()
        self.rows = 0

    def sent(self, rows: int) -> None:
        if self.rate is None:
            return
        self.rows += rows
        ahead = self.rows / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)


def backfill(settings, task, start: int, progress) -> int:
    from streams.sources.backfill import converter, read_rows

    p = task.params
    conv = converter(p["url"], p["query"], p["label"], task.tenant, p.get("id_column"),
                     p.get("time_column"), p.get("weight_column"))
    out, rows_done = Sender(settings), 0
    for rows in read_rows(p["url"], p["query"], CHUNK):
        first = rows_done
        rows_done += len(rows)
        if rows_done <= start:
            continue  # done before a restart
        rows = rows[max(start - first, 0):]
        good, bad = conv.convert(rows, max(first, start))
        out.send(task.tenant, good, bad)
        progress(rows_done, None)
    return rows_done


def export(settings, key: bytes, task, start: int, progress) -> int:
    """The tenant's last checkpointed models, as a signed snapshot file (what serving loads;
    ``aimass`` reads it back with the same state key)."""
    from streams.state.checkpoints import CheckpointStore
    from streams.state.model_sets import load_checkpoint, snapshot_of

    progress(0, 1)
    states, _ = CheckpointStore(settings, key).load()
    if task.tenant not in states:
        raise ValueError(f"tenant {task.tenant!r} has no checkpoint yet")
    data = snapshot_of(load_checkpoint(states[task.tenant], key), key)
    path = Path(task.params["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # whole or not at all
    progress(1, 1)
    return 1


def _reader(settings, partition: int, offset: int):
    from confluent_kafka import TopicPartition

    from streams.state.checkpoints import large_consumer

    c = large_consumer(settings, "aimass-task-replay")
    c.assign([TopicPartition(topic_names(settings)["training"], partition, offset)])
    return c


def replay(settings, task, start: int, progress, reader=_reader) -> int:
    """Offsets ``start``..``end`` (exclusive) of a partition of the training topic learned again
    by the task's tenant (of ``source_tenant`` only, if given): each row re-sent under the
    tenant and an id of its own (``replay-<task>-<id>``), so it is learned once more, once.
    Progress is in offsets of the range; a row that does not decode is skipped."""
    from dataclasses import replace

    from streams.contracts.events import TrainingExample, decode

    p = task.params
    first, end, source = int(p["start"]), int(p["end"]), p.get("source_tenant")
    total = max(end - first, 0)
    progress(start, total)
    if start >= total:
        return total
    out, c = Sender(settings), reader(settings, int(p["partition"]), first + start)
    at, idle = first + start, 0
    try:
        while at < end:
            msgs = [m for m in c.consume(CHUNK, 1.0) if not m.error()]
            if not msgs:
                idle += 1
                if idle >= 10:
                    raise ValueError(f"offsets up to {end} not there: the partition ends "
                                     f"at {at}")
                continue
            idle, rows = 0, []
            for m in msgs:
                if m.offset() >= end:
                    break
                at = m.offset() + 1
                try:
                    ex = decode(TrainingExample, m.value())
                except ValueError:
                    continue
                if source is None or ex.tenant == source:
                    new_id = f"replay-{task.id}-{ex.id}"
                    if len(new_id) > MAX_ID:
                        new_id = f"replay-{task.id}-{hashlib.sha1(ex.id.encode()).hexdigest()}"
                    rows.append(replace(ex, tenant=task.tenant, id=new_id))
            out.send(task.tenant, rows)
            progress(min(at, end) - first, total)
            if msgs[-1].offset() >= end - 1:
                break
    finally:
        c.close()
    return total
