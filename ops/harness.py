"""Run `aimass worker` as a child process and read its progress from its /metrics page.

Used by the demo, the benchmarks and the tests: the worker is started exactly as a user would
start it, with the settings passed through the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ops.services.proc import stop_pid
from streams.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMASS_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"AIMASS_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    """`aimass worker` (or, with ``command``, another subcommand) as a child process."""

    def __init__(self, settings: Settings, log: Path, loglevel: str = "warn",
                 command: tuple[str, ...] | None = None, port: int | None = None,
                 nice: int = 0, module: str = "streams.cli"):
        self.settings = settings
        self.log = log
        self.port = port or settings.web_port
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(log, "ab")
        args = list(command) if command else ["worker", "-l", loglevel]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *(args if module == "streams.cli" else [])],
            env=settings_env(settings), stdout=self._out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None)

    @classmethod
    def serving(cls, settings: Settings, log: Path, workers: int = 1) -> WorkerProcess:
        """`aimass serve` on ``settings.serving_port``, ``workers`` replica processes."""
        return cls(settings, log, command=("serve", "--workers", str(workers)),
                   port=settings.serving_port)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Every sample of the process's /metrics, keyed by (name, sorted labels)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        text = urllib.request.urlopen(url, timeout=2).read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    def counter(self, name: str, **labels: str) -> float:
        """Sum of a counter's samples matching ``labels`` (0 when absent or not up yet)."""
        try:
            samples = self.metrics()
        except OSError:
            return 0.0
        want = set(labels.items())
        return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))

    def wait_for(self, name: str, target: float, timeout: float, **labels: str) -> float:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}; see {self.log}")
            value = self.counter(name, **labels)
            if value >= target:
                return value
            time.sleep(0.25)
        dump = self.log.with_suffix(".metrics")
        try:  # what the process counted, for whoever reads the failure
            dump.write_bytes(urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/metrics", timeout=2).read())
        except OSError:
            pass
        raise TimeoutError(f"{name}{labels or ''} reached {value:.0f} of {target:.0f} in "
                           f"{timeout:.0f}s; see {self.log} and {dump}")

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the process and its living descendants have spent."""
        return tree_cpu_seconds(self.proc.pid)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the worker has joined its group and been assigned partitions."""
        self.wait_for("aimass_assigned_partitions", 1, timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` of the process's log (what it wrote before it died)."""
        self._out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, kill: bool = False) -> None:
        if kill:
            os.killpg(self.proc.pid, 9)
        else:
            stop_pid(self.proc.pid, timeout=30)
        self.proc.wait(30)
        self._out.close()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every descendant still running, from Linux's
    /proc (a process gone before the call is not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(k) for k in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return total


def machine_cpu_seconds() -> float:
    """CPU seconds every core of this machine has spent busy (user, nice, system, irq, softirq,
    steal) since boot, from Linux's /proc/stat; 0.0 where it cannot be read."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    except (OSError, ValueError):
        return 0.0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
