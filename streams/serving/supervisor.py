"""`aimass serve --workers N`: N replica processes behind one port, kept alive by this parent.

One replica is one event loop on one core: past a few hundred requests/s of 100 candidates
its queue, not the model, sets the p99. So the parent starts N replicas (``aimass serve`` with
``--reuse-port``); each binds the same port with ``SO_REUSEPORT`` and the kernel spreads new
connections over them. Each follows the model updates and logs its answers on its own. A
replica that exits is started again (the others keep answering meanwhile); one that keeps
dying within ``FAST_EXIT`` seconds of its start is given up after ``MAX_FAST_EXITS`` tries in
a row, and the parent exits 1 with the others stopped, rather than looping on a broken
configuration. SIGTERM or SIGINT stops them all.

Metrics: the replicas write their series to ``PROMETHEUS_MULTIPROC_DIR`` (prometheus
client's multi-process mode), so ``/metrics`` on the shared port, whichever replica answers,
sums the counters and histograms of all of them; ``aimass_serving_model_version`` is the
lowest any live replica serves and ``aimass_serving_model_age_seconds`` the highest.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from prometheus_client import multiprocess

log = logging.getLogger(__name__)

FAST_EXIT = 10.0  # seconds: a replica that exits sooner did not really start
MAX_FAST_EXITS = 5


def default_workers() -> int:
    """Half the cores (the worker, ClickHouse and Kafka need the rest), at least 1."""
    return max(1, (os.cpu_count() or 1) // 2)


class Supervisor:
    def __init__(self, port: int, n: int, argv: list[str] | None = None):
        self.port, self.n = port, n
        self.argv = argv or [sys.executable, "-m", "streams.cli", "serve", "--workers", "1",
                             "--reuse-port", "--port", str(port)]
        self.procs: dict[int, tuple[subprocess.Popen, float]] = {}  # slot -> (process, start)
        self.fast_exits = [0] * n
        self.stopping = False
        self.restarts = 0
        self.metrics_dir = tempfile.mkdtemp(prefix="aimass-serving-metrics-")

    def _start(self, slot: int) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
               "AIMASS_REPLICA": str(slot), "AIMASS_REPLICAS": str(self.n)}
        proc = subprocess.Popen(self.argv, env=env)
        self.procs[slot] = (proc, time.monotonic())
        log.info("replica %d started: pid %d", slot, proc.pid)

    def _reap(self) -> int | None:
        """Start again every replica that exited; the exit status to leave with, if any."""
        for slot, (proc, started) in list(self.procs.items()):
            code = proc.poll()
            if code is None or self.stopping:
                continue
            multiprocess.mark_process_dead(proc.pid, self.metrics_dir)  # its live gauges
            fast = time.monotonic() - started < FAST_EXIT
            self.fast_exits[slot] = self.fast_exits[slot] + 1 if fast else 0
            if self.fast_exits[slot] >= MAX_FAST_EXITS:
                log.error("replica %d exited %d times in a row within %.0f s of its start "
                          "(last status %d): giving up", slot, MAX_FAST_EXITS, FAST_EXIT, code)
                return 1
            log.warning("replica %d (pid %d) exited with %d: starting it again", slot,
                        proc.pid, code)
            self.restarts += 1
            self._start(slot)
        return None

    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("serving on port %d with %d replicas", self.port, self.n)
        for slot in range(self.n):
            self._start(slot)
        code = 0
        try:
            while not self.stopping:
                time.sleep(0.2)
                failed = self._reap()
                if failed is not None:
                    code = failed
                    break
        finally:
            self._stop_all()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return code

    def _stop_all(self, grace: float = 10.0) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc, _ in self.procs.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
