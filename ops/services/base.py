"""`aimass up` / `aimass down`: start the services in order, record their pids, stop them."""

from __future__ import annotations

from collections.abc import Callable

from streams.settings import Settings

from .proc import Registry, ServiceError, pid_alive, stop_pid

Starter = Callable[[Settings], dict]


def _starters(embedded: bool, prometheus: bool) -> list[tuple[str, Starter]]:
    from . import clickhouse, kafka, tansu
    from . import prometheus as prom

    if embedded:
        chosen = [("tansu", tansu.start)]  # ClickHouse is chdb, in-process: nothing to start
    else:
        chosen = [("kafka", kafka.start), ("clickhouse", clickhouse.start)]
    if prometheus:
        chosen.append(("prometheus", prom.start))
    return chosen


def up(settings: Settings, embedded: bool = False, prometheus: bool = True,
       echo: Callable[[str], None] = print) -> dict[str, dict]:
    """Start every service not already running; return what runs, by name."""
    reg = Registry(settings.run_dir)
    started: dict[str, dict] = {}
    for name, start in _starters(embedded, prometheus):
        entry = reg.running(name)
        if entry:
            echo(f"{name}: already running (pid {entry['pid']}) at {entry['address']}")
        else:
            echo(f"{name}: starting ...")
            entry = start(settings)
            reg.record(name, entry)
            echo(f"{name}: ready at {entry['address']} (pid {entry['pid']}, log {entry['log']})")
        started[name] = entry
    return started


def down(settings: Settings, echo: Callable[[str], None] = print) -> list[str]:
    """Stop, newest first, every service `up` recorded in this data directory."""
    reg = Registry(settings.run_dir)
    stopped = []
    for name, entry in reversed(list(reg.load().items())):
        if stop_pid(entry["pid"]):
            echo(f"{name}: stopped (pid {entry['pid']})")
            stopped.append(name)
        else:
            echo(f"{name}: was not running")
        reg.forget(name)
    return stopped


def status(settings: Settings) -> dict[str, dict]:
    return {name: {**entry, "running": pid_alive(entry["pid"])}
            for name, entry in Registry(settings.run_dir).load().items()}


__all__ = ["ServiceError", "up", "down", "status"]
