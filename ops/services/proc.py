"""Process bookkeeping shared by every service: start detached, record the pid, wait, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson


class ServiceError(RuntimeError):
    """A service could not be started; the message says what failed and what to do."""


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


class Registry:
    """The services this data directory runs, in ``run/services.json``."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "services.json"
        run_dir.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        return orjson.loads(self.path.read_bytes())

    def save(self, entries: dict[str, dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))
        tmp.replace(self.path)

    def running(self, name: str) -> dict | None:
        entry = self.load().get(name)
        return entry if entry and pid_alive(entry["pid"]) else None

    def record(self, name: str, entry: dict) -> None:
        entries = self.load()
        entries[name] = entry
        self.save(entries)

    def forget(self, name: str) -> None:
        entries = self.load()
        entries.pop(name, None)
        self.save(entries)


def check_port_free(port: int, what: str, setting: str) -> None:
    if port_open(port):
        raise ServiceError(
            f"port {port} for {what} is taken by another process. Stop it, or choose another "
            f"port with {setting}.")


def spawn(argv: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` detached from this process (own session), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=cwd)
    return proc.pid


def wait_until(ready: Callable[[], bool], pid: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise ServiceError(f"{what} exited during start-up. Last lines of {log}:\n{tail(log)}")
        try:
            if ready():
                return
        except Exception:  # not ready yet
            pass
        time.sleep(0.25)
    raise ServiceError(f"{what} was not ready after {timeout:.0f}s. Last lines of {log}:\n{tail(log)}")


def stop_pid(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM the process group, then SIGKILL after ``timeout``. True if it was running."""
    if not pid_alive(pid):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                return True
            time.sleep(0.1)
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
