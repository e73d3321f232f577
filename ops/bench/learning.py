"""Progressive log loss, AUC and examples/s of every learner on the full MovieLens-100k click
stream: in-process, through Kafka end to end (replay -> join -> train, one worker per learner),
and Vowpal Wabbit on the same features in the same run.

    python -m ops.bench.learning [--limit N] [--learners ftrl,fm]
                                 [--modes in-process,kafka,floor,vw] [--workers 1,2]
                                 [--backends kafka] [--logs DIR] [--json PATH]
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np

from learners import registry
from learners.metrics import log_loss, roc_auc
from streams.contracts.features import DEFAULT_CROSSES

from .common import backend, parser, print_table, write_json
from .movielens_stream import click_stream
from .vw import run_vw

BATCH = 2000
STAGES = ("ingest", "score", "join", "train")  # the worker's own time per stage


def in_process(name: str, X, y) -> dict:
    model = registry.build([name], DEFAULT_CROSSES)[name]
    model.progressive_many(X[:50], y[:50])  # compile numba kernels outside the clock
    model = model.clone()
    p = np.empty(len(X))
    t = time.perf_counter()
    for i in range(0, len(X), BATCH):
        p[i:i + BATCH] = model.progressive_many(X[i:i + BATCH], y[i:i + BATCH])
    secs = time.perf_counter() - t
    return {"name": name, "mode": "in-process", "logloss": log_loss(y, p), "auc": roc_auc(y, p),
            "examples": len(X), "examples_per_s": len(X) / secs}


def through_kafka(name: str, settings, limit: int | None, expected: int, log_dir,
                  workers: int = 1, floor: bool = False) -> dict:
    """Replay to Kafka with ``workers`` worker processes (one consumer group) whose model set
    is just ``name``, or the framework-free floor (``floor``: ops/bench/floor.py, one
    process); read the predictions back from ClickHouse. examples_per_s is end to end: from
    the first request produced to the last example learned; steady_examples_per_s over the
    middle of the stream (:func:`steady_rate`); train_stage_examples_per_s counts the train
    stage's own time; worker_cpu_us_per_example the workers' CPU (all their threads) from
    before the replay to the last example learned, per example."""
    from ops.harness import WorkerProcess
    from sinks.clickhouse import connect
    from streams.contracts.topics import ensure_topics
    from streams.sources.replay import run_replay

    from .common import free_port

    tag = uuid.uuid4().hex[:6]
    s = settings.model_copy(update={"models": name, "topic_prefix": f"bench{tag}",
                                    "app_id": f"bench{tag}", "join_idle_flush": 3.0,
                                    "checkpoint_interval": 5.0, "holdout_fraction": 0.0,
                                    "ensembles": ""})
    if s.embedded:
        s = s.model_copy(update={"clickhouse_url": f"chdb://{log_dir}/chdb-{tag}"})
    else:
        s = s.model_copy(update={"clickhouse_url": f"clickhouse://127.0.0.1:"
                                                   f"{s.clickhouse_tcp_port}/bench{tag}"})
    ensure_topics(s)
    procs = [WorkerProcess(s.model_copy(update={"web_port": free_port()}),
                           log_dir / f"worker-{name}-{tag}-{i}.log",
                           module="ops.bench.floor" if floor else "streams.cli")
             for i in range(workers)]

    def total(metric: str, **labels) -> float:
        return sum(p.counter(metric, **labels) for p in procs)

    try:
        for p in procs:
            p.wait_ready()
        if workers > 1:  # every member has joined: the group has settled
            deadline = time.monotonic() + 60
            while total("aimass_assigned_partitions") < len(procs) and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(s.group_rebalance_timeout)
        cpu0 = sum(p.cpu_seconds() for p in procs)
        t0 = time.perf_counter()
        samples: list[tuple[float, float]] = []  # (seconds since t0, examples learned)
        done = threading.Event()

        # one scrape of each worker every 0.25 s, the wait below reads its samples: a scrape
        # costs the worker's event loop ~5 ms here (the registry's every series), and the
        # 15 a second this bench made before were 7% of the worker's main thread (py-spy)
        def sample() -> None:
            while not done.wait(0.25):
                samples.append((time.perf_counter() - t0,
                                total("aimass_examples_learned_total")))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            first: list[float] = []  # when the first request was sent, since t0

            def sent(_: int) -> None:
                if not first:
                    first.append(time.perf_counter() - t0)

            run_replay(s.model_copy(update={"data_dir": settings.cache_dir.parent}), limit,
                       on_request=sent)
            produced = time.perf_counter() - t0 - first[0]
            deadline = time.monotonic() + 1800
            while not samples or samples[-1][1] < expected:
                dead = [p for p in procs if p.proc.poll() is not None]
                if time.monotonic() > deadline or dead:
                    tail = "\n".join(f"{p.log.name}:\n{p.log_tail()}" for p in dead)
                    raise RuntimeError(f"learned {samples[-1][1] if samples else 0:.0f} "
                                       f"of {expected}\n{tail}")
                time.sleep(0.05)
        finally:
            done.set()
            sampler.join()
        # from the first request sent (not from t0: loading the data set and checking the
        # topics came before it) to the sample that saw every example learned
        e2e = samples[-1][0] - first[0]
        cpu = sum(p.cpu_seconds() for p in procs) - cpu0
        stages = {st: total("aimass_batch_seconds_sum", stage=st) for st in STAGES}
        batches = {st: total("aimass_batch_size_count", stage=st) for st in STAGES}
        sizes = {st: total("aimass_batch_size_sum", stage=st) / n if n else float("nan")
                 for st, n in batches.items()}
        stage = stages["train"]
        while total("aimass_checkpoint_examples") < expected:  # rows all written
            if time.monotonic() > deadline:
                raise TimeoutError("checkpoints")
            time.sleep(0.2)
        order = examples_in_stream_order(s)
    finally:
        for p in procs:
            p.stop()
    ch = connect(s.clickhouse_dsn)
    try:
        rows = ch.query(f"SELECT label, p FROM predictions FINAL WHERE model = '{name}'")
    finally:
        ch.close()
    yk = np.array([r[0] for r in rows])
    pk = np.array([r[1] for r in rows], dtype=np.float64)
    same = in_process(name, [e.features for e in order], [e.label for e in order])
    return {"same_order_logloss": same["logloss"],
            **disorder([e.event_time for e in order]),
            "logloss_vs_same_order": log_loss(yk, pk) - same["logloss"],
            "name": name, "mode": "floor" if floor else "kafka", "workers": workers,
            "logloss": log_loss(yk, pk), "auc": roc_auc(yk, pk),
            "examples": len(rows), "examples_per_s": len(rows) / e2e,
            "steady_examples_per_s": steady_rate(samples, expected),
            "train_stage_examples_per_s": len(rows) / stage if stage else float("nan"),
            "replay_seconds": produced, "e2e_seconds": e2e, "replay_start_seconds": first[0],
            # the workers' own CPU (every thread) per example learned: steadier than the rates
            # where the machine's speed drifts between runs
            "worker_cpu_us_per_example": cpu * 1e6 / len(rows),
            "learned_at": [[round(t, 2), n] for t, n in samples[::5]],  # (s since t0, learned)
            # the last 0.1%: the windows the idle flush closes, once the stream has gone quiet
            "tail_seconds": samples[-1][0] - next((t for t, n in samples
                                                   if n >= 0.999 * expected), samples[-1][0]),
            **{f"{st}_seconds": secs for st, secs in stages.items()},
            **{f"{st}_batch_mean": n for st, n in sizes.items()}}


def steady_rate(samples: list[tuple[float, float]], expected: int,
                lo: float = 0.2, hi: float = 0.8) -> float:
    """Examples/s while the middle of the stream was learned (from ``lo`` to ``hi`` of it):
    what a continuous stream gets, without the start (partitions assigned, first fetches) and
    the tail (the last windows close only once the join has been idle ``join_idle_flush``).

    >>> steady_rate([(1.0, 0), (2.0, 100), (3.0, 400), (4.0, 800), (9.0, 1000)], 1000)
    400.0
    """
    first = next(((t, n) for t, n in samples if n >= lo * expected), None)
    last = next(((t, n) for t, n in samples if n >= hi * expected), None)
    if first is None or last is None or last[0] <= first[0]:
        return float("nan")
    return (last[1] - first[1]) / (last[0] - first[0])


def disorder(times: list[float]) -> dict:
    """How far the trainer's order is from event-time order: the share of examples learned
    after one with a later event time (``order_late_share``), and the most event time such
    an example lags it by (``order_max_back_s``). Two workers' joins each send their batches
    in order, but to the one trainer interleaved.

    >>> disorder([1.0, 2.0, 5.0, 3.0, 4.0, 6.0])
    {'order_late_share': 0.333333, 'order_max_back_s': 2.0}
    """
    t = np.asarray(times, dtype=np.float64)
    if not len(t):
        return {"order_late_share": 0.0, "order_max_back_s": 0.0}
    back = np.maximum.accumulate(t) - t
    return {"order_late_share": round(float((back > 0).mean()), 6),
            "order_max_back_s": float(back.max())}


def examples_in_stream_order(settings, tenant: str = "movielens") -> list:
    """A tenant's examples from the start of its partition of the examples topic, as its
    trainer read them, each id once: the order an in-process loop must follow to tell what
    the stream itself costs. Raises if the tenant's examples are anywhere else."""
    from confluent_kafka import Consumer, TopicPartition

    from streams.contracts.example_batches import decode_examples
    from streams.contracts.topics import partition_for, topic_names

    topic = topic_names(settings)["examples"]
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "bench-order",
                  "enable.auto.commit": False})
    try:
        partitions = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        mine = partition_for(tenant.encode(), len(partitions))
        seen, out = set(), []
        for p in partitions:
            end = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            if p != mine:
                if end:  # only the tenant's partition may hold its examples
                    c.assign([TopicPartition(topic, p, 0)])
                    m = c.consume(1, 10.0)
                    if m and m[0].key() == tenant.encode():
                        raise RuntimeError(f"{tenant}'s examples on partition {p}")
                continue
            c.assign([TopicPartition(topic, p, 0)])
            offset = 0
            while offset < end:
                for m in c.consume(5000, 1.0):
                    if m.error():
                        raise RuntimeError(m.error())
                    offset = m.offset() + 1
                    exs, refused = decode_examples(m.value())
                    if refused:
                        raise RuntimeError(f"examples at offset {m.offset()}: {refused[0][2]}")
                    for ex in exs:
                        if ex.id not in seen:
                            seen.add(ex.id)
                            out.append(ex)
        return out
    finally:
        c.close()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--limit", type=int, default=0, help="only the first N ratings")
    p.add_argument("--learners", default=",".join(registry.ALL))
    p.add_argument("--modes", default="in-process,kafka,vw",
                   help="in-process, kafka (the Faust workers), floor (no framework), vw")
    p.add_argument("--workers", default="1", help="worker counts of the kafka mode: 1,2")
    p.add_argument("--logs", type=Path, default=None,
                   help="keep the workers' logs in this directory (default: a temporary one)")
    args = p.parse_args()
    modes = args.modes.split(",")
    names = args.learners.split(",")
    exs = click_stream(args.cache_dir.parent, args.limit or None)
    X = [e.features for e in exs]
    y = [e.label for e in exs]
    print(f"{len(exs)} examples, CTR {np.mean(y):.3f}")
    rows: list[dict] = []
    if "vw" in modes:
        from learners.hashing import FeatureHasher

        hasher = FeatureHasher(22, DEFAULT_CROSSES)
        for ftrl in (False, True):
            pv, rate = run_vw(X, y, hasher, ftrl)
            rows.append({"name": "vw --ftrl" if ftrl else "vw", "mode": "vw",
                         "logloss": log_loss(y, pv), "auc": roc_auc(y, pv),
                         "examples": len(X), "examples_per_s": rate})
    if "in-process" in modes:
        rows += [in_process(n, X, y) for n in names]
    runs = [(False, int(w)) for w in args.workers.split(",")] if "kafka" in modes else []
    if "floor" in modes:
        runs.append((True, 1))
    if runs:
        import contextlib
        import tempfile

        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
        for kind in args.backends.split(","):
            logs_dir = (contextlib.nullcontext(args.logs) if args.logs
                        else tempfile.TemporaryDirectory())
            with backend(kind, args.cache_dir) as s, logs_dir as logs:
                for n in names:
                    for floor, workers in runs:
                        r = through_kafka(n, s, args.limit or None, len(exs), Path(logs),
                                          workers, floor)
                        if kind != "kafka":
                            r["mode"] += " (embedded)"
                        rows.append(r)
                        print({k: r[k] for k in ("name", "mode", "workers", "logloss",
                                                 "examples_per_s")}, flush=True)
    for r in rows:
        r.setdefault("workers", 1)
        base = next((b for b in rows if b["name"] == r["name"] and b["mode"] == "in-process"),
                    None)
        floor = next((b for b in rows if b["name"] == r["name"] and b["mode"] == "floor"),
                     None)
        if base and r is not base:
            r["logloss_vs_in_process"] = r["logloss"] - base["logloss"]
            r["rate_vs_in_process"] = r["examples_per_s"] / base["examples_per_s"]
        if floor and r["mode"] == "kafka":
            r["rate_vs_floor"] = r["examples_per_s"] / floor["examples_per_s"]
    print_table(rows, ["name", "mode", "workers", "examples", "logloss", "auc",
                       "examples_per_s", "steady_examples_per_s", "train_stage_examples_per_s",
                       "worker_cpu_us_per_example", "logloss_vs_in_process",
                       "logloss_vs_same_order", "rate_vs_in_process", "rate_vs_floor"])
    write_json(args.json, rows, examples=len(exs))


if __name__ == "__main__":
    main()
