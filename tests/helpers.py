"""What the tests share: the state key, Kafka readers, an HTTP server thread and client, the
`aimass` command, a trained model set, the chaos suite's service controls and exactly-once
check."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import river.datasets
from aiohttp import web
from confluent_kafka import Consumer, TopicPartition

from ensemble import build_combiner
from learners.checks import stream
from learners.registry import build
from ops import services
from ops.services.proc import Registry, stop_pid
from sinks.clickhouse import connect
from streams.contracts.events import TrainingExample
from streams.state.checkpoints import CheckpointStore
from streams.state.model_sets import load_checkpoint
from streams.state.statefile import load_key
from streams.training.model_set import ModelSet

KEY = b"a test state key"  # signs the states that tests make in-process


# -- Kafka
def consume_all(settings, topic: str, expected: int, group: str, timeout: float = 60.0,
                idle: float = 3.0) -> list:
    """Read ``topic`` with consumer group ``group`` until ``expected`` messages came and nothing
    more arrives for ``idle`` seconds (so duplicates would show), committing as it goes."""
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": True,
                  "session.timeout.ms": 6000})
    c.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = c.consume(1000, 0.5)
            for m in msgs:
                if m.error():
                    raise RuntimeError(m.error())
                out.append(m)
            if msgs:
                last = time.monotonic()
            elif len(out) >= expected and time.monotonic() - last > idle:
                break
    finally:
        c.close()
    return out


def end_offsets(settings, topic: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "offsets-probe"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        c.close()


# -- HTTP


class ServerThread(threading.Thread):
    def __init__(self, app: web.Application):
        super().__init__(daemon=True)
        self.app = app
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> ServerThread:
        self.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def call(url: str, body=None, raw: bytes | None = None, timeout: float = 10.0):
    """(status, decoded JSON body) for GET (no body) or POST."""
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        payload = e.read()
        try:
            return e.code, orjson.loads(payload)
        except orjson.JSONDecodeError:
            return e.code, {"raw": payload.decode(errors="replace")}


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 in {timeout}s")


# -- the aimass command
def aimass(*args: str, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True,
                          text=True, env=env or os.environ.copy(), timeout=timeout)



# -- data and models
PHISHING = Path(os.path.dirname(river.datasets.__file__)) / "phishing.csv.gz"




def examples(n, tenant="t", start=0):
    X, y = stream(n + start, seed=3)
    return [TrainingExample(f"e{i}", float(i), tenant, X[i], y[i]) for i in range(start, start + n)]




def trained_snapshot(n=1500, version_batches=3, tenant="acme", models=("ftrl", "fm")):
    X, y = stream(n, seed=11)
    ms = ModelSet(tenant, build(list(models)),
                  ensembles={s: build_combiner(s) for s in ("average", "stacking")})
    step = n // version_batches
    for i in range(0, n, step):
        ms.process([TrainingExample(f"e{j}", 1.0, tenant, X[j], y[j])
                    for j in range(i, min(i + step, n))])
    return ms


BODY = {"tenant": "acme", "user": {"u_gender": "F", "u_user_id": "3"},
        "candidates": [{"ad_id": str(i), "features": {"a_genre": g}}
                       for i, g in enumerate(["Drama", "Comedy"] * 50)]}



# -- the chaos suite

quiet = lambda _: None  # noqa: E731


def stop_service(settings, name: str) -> None:
    """Stop one service `up` started (``kafka`` or ``clickhouse``), keeping its data."""
    reg = Registry(settings.run_dir)
    entry = reg.load()[name]
    stop_pid(entry["pid"], timeout=30)
    reg.forget(name)


def start_services(settings) -> None:
    """Start whatever of Kafka and ClickHouse is not running, on their data directories."""
    services.up(settings, embedded=False, prometheus=False, echo=quiet)


def learned_once(settings, tenant: str, n: int, models: tuple[str, ...]) -> None:
    """``n`` examples learned, each once: the checkpoint's counts and learned ids, every
    model's progressive count, and ClickHouse's rows (``FINAL``: one per id)."""
    key = load_key(settings)
    states, rejected = CheckpointStore(settings, key).load()
    ms = load_checkpoint(states[tenant], key)
    assert ms.examples_learned == n, (ms.examples_learned, n)
    assert len(ms.learned) == n
    for m in models:
        assert ms.metrics()[m]["examples"] == n, (m, ms.metrics()[m]["examples"])
    ch = connect(settings.clickhouse_dsn)
    try:
        assert ch.query("SELECT count(), uniqExact(example_id) FROM examples FINAL "
                        f"WHERE tenant = '{tenant}'") == [(n, n)]
        for m in models:
            assert ch.query(f"SELECT count() FROM predictions FINAL WHERE tenant = '{tenant}' "
                            f"AND model = '{m}'") == [(n,)]
    finally:
        ch.close()


def wait_until(check, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # not there yet (a service restarting)
            last = exc
        time.sleep(every)
    raise TimeoutError(f"{what} not within {timeout:.0f}s (last: {last!r})")


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def captured_sends(monkeypatch) -> list:
    """The examples tasks send (streams.control.jobs.Sender), kept in a list instead of sent
    to Kafka."""
    from streams.control import jobs

    sent: list = []

    class Sender:
        def __init__(self, settings):
            pass

        def send(self, tenant, examples, dead_letters=()):
            sent.extend(examples)

    monkeypatch.setattr(jobs, "Sender", Sender)
    return sent
