"""Helpers of the chaos suite: a Kafka broker and a ClickHouse server of the suite's own (so
stopping them disturbs no other test), and the checks every chaos test ends with: every
example learned exactly once, by the learners' counts and by ClickHouse's ``FINAL`` counts."""

from __future__ import annotations

import time
from pathlib import Path

from ops import services
from ops.services.proc import Registry, stop_pid
from sinks.clickhouse import connect
from streams.state.checkpoints import CheckpointStore
from streams.state.model_sets import load_checkpoint
from streams.state.statefile import load_key

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
