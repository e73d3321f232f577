"""The physical limits every later throughput figure stands on: our event encoding (orjson
encode, decode + validation) and produce/consume events/s through the local broker, real Apache
Kafka and the embedded Tansu, on this machine.

    python -m ops.bench.kafka [--events 200000] [--backends kafka,embedded] [--json PATH]
"""

from __future__ import annotations

import asyncio
import time
import uuid

from confluent_kafka import Consumer

from streams.contracts.events import AdRequest, decode, encode
from streams.contracts.topics import ensure_topics, topic_names
from streams.producer import EventProducer
from streams.sources import movielens

from .common import backend, parser, print_table, write_json


def requests(n: int, data_dir) -> list[AdRequest]:
    ml = movielens.load(movielens.fetch(data_dir))
    evs = [e.request for e in movielens.ad_stream(ml, min(n, len(ml.ratings)),
                                                  extra_candidates=2)]
    while len(evs) < n:  # beyond 100k, repeat with new ids
        evs += [AdRequest(f"{e.id}-{len(evs)}", e.event_time, e.tenant, e.user, e.candidates,
                          e.context) for e in evs[: n - len(evs)]]
    return evs


def row(name: str, mode: str, events: int, seconds: float, **extra) -> dict:
    return {"name": name, "mode": mode, "events": events, "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds, 1), **extra}


def bench_codec(evs: list[AdRequest]) -> list[dict]:
    t = time.perf_counter()
    raws = [encode(e) for e in evs]
    enc = time.perf_counter() - t
    t = time.perf_counter()
    for r in raws:
        decode(AdRequest, r)
    dec = time.perf_counter() - t
    size = sum(map(len, raws)) / len(raws)
    return [row("orjson encode", "in-process", len(evs), enc, bytes_per_event=round(size)),
            row("orjson decode + validate", "in-process", len(evs), dec,
                bytes_per_event=round(size))]


def bench_broker(s, mode: str, raws: list[tuple[bytes, bytes]], rounds: int = 2) -> list[dict]:
    s = s.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}"})
    ensure_topics(s)
    topic = topic_names(s)["ad-requests"]
    p = EventProducer(s)
    t = time.perf_counter()
    for k, v in raws:
        p.send_raw(topic, k, v)
    p.flush()
    prod = time.perf_counter() - t
    out = [row("produce (confluent-kafka, acks=all)", mode, len(raws), prod)]

    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "bench-confluent",
                  "auto.offset.reset": "earliest", "fetch.max.bytes": 52428800})
    c.subscribe([topic])
    n, t, first = 0, time.perf_counter(), None
    while n < len(raws) and time.perf_counter() - t < 300:
        msgs = c.consume(5000, 1.0)
        if msgs and first is None:
            first = time.perf_counter()
        n += sum(1 for m in msgs if not m.error())
    c.close()
    out.append(row("consume (confluent-kafka)", mode, n, time.perf_counter() - (first or t)))
    out.append(asyncio.run(_aiokafka_consume(s, topic, len(raws), mode)))
    for _ in range(rounds):  # alternating, the same topic: compare within the run
        out.append(_faust_consume(s, len(raws), mode, "aimass"))
        out.append(_faust_consume(s, len(raws), mode, "kafka"))
    return out


FAUST_ROWS = {"aimass": "consume (Faust agent, take_events)",
              "kafka": "consume (Faust agent, take_events, Faust's stock consumer)"}


def _faust_consume(s, expected: int, mode: str, driver: str) -> dict:
    """A Faust worker with the app's settings and one agent that takes batches and does
    nothing: what every stage of the pipeline pays before its own work; with our transport
    driver (streams/worker/consumer.py) or Faust's stock one."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import orjson

    from ops.harness import settings_env

    s = s.model_copy(update={"app_id": f"bench-faust-{uuid.uuid4().hex[:6]}",
                             "faust_driver": driver})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        proc = subprocess.Popen([sys.executable, "-m", "ops.bench.faust_consume", str(expected),
                                 str(out)], env=settings_env(s), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not out.exists():
            return row(FAUST_ROWS[driver], mode, 0, float("nan"))
        res = orjson.loads(out.read_bytes())
    return row(FAUST_ROWS[driver], mode, res["events"], res["seconds"], batches=res["batches"])


async def _aiokafka_consume(s, topic: str, expected: int, mode: str) -> dict:
    """aiokafka is Faust's client: this is the ceiling any Faust agent starts from."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=s.kafka_bootstrap, group_id="bench-aiokafka",
                         auto_offset_reset="earliest", max_poll_records=5000,
                         rebalance_timeout_ms=3000, session_timeout_ms=6000)
    await c.start()
    n, t, first = 0, time.perf_counter(), None
    try:
        while n < expected and time.perf_counter() - t < 300:
            batch = await c.getmany(timeout_ms=1000, max_records=5000)
            got = sum(len(v) for v in batch.values())
            if got and first is None:
                first = time.perf_counter()
            n += got
    finally:
        await c.stop()
    return row("consume (aiokafka, Faust's client)", mode, n, time.perf_counter() - (first or t))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=2, help="Faust agent runs per driver")
    args = p.parse_args()
    evs = requests(args.events, args.cache_dir.parent)
    rows = bench_codec(evs)
    raws = [(e.id.encode(), encode(e)) for e in evs]
    for kind in args.backends.split(","):
        with backend(kind, args.cache_dir) as s:
            rows += bench_broker(s, "kafka" if kind == "kafka" else "embedded (tansu)", raws,
                                 args.rounds)
    print_table(rows, ["name", "mode", "events", "seconds", "events_per_s"])
    write_json(args.json, rows, events=args.events)


if __name__ == "__main__":
    main()
