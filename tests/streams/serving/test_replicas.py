"""`aimass serve --workers N`: replicas behind one port; one that dies is started again while
the others answer; /metrics counts every replica's requests."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ops.harness import WorkerProcess
from tests.helpers import BODY, call, log_tail, wait_http, wait_until


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                out.append(int(d.name))
    return sorted(out)


def status(url: str, body: dict | None, why: list | None = None) -> int:
    try:
        return call(url, body)[0]
    except OSError as exc:  # reset (it was queued at a replica that died), or no answer in 10 s
        if why is not None:
            why.append(f"{type(exc).__name__}: {exc}")
        return 0


@pytest.mark.services
def test_replicas_share_a_port_and_one_that_dies_is_replaced(fresh, tmp_path):
    if fresh.embedded:
        pytest.skip("the supervisor does not depend on the backend: run once, on Kafka")
    serve = WorkerProcess.serving(fresh, tmp_path / "serve.log", workers=2)
    url = f"http://127.0.0.1:{serve.port}"
    body = {**BODY, "tenant": "nobody-yet"}  # the fallback: no model needed
    again: list[int] = []
    try:
        first = wait_until(lambda: len(children(serve.proc.pid)) == 2 and
                           children(serve.proc.pid), 60, "two replicas")
        wait_http(url + "/readyz", 90)
        # each call is a new connection, spread over both: both must be up and caught up,
        # and have answered a first /recommend (a slow machine may take a while over it)
        wait_until(lambda: all(status(url + "/readyz", None) == 200 for _ in range(20)), 90,
                   "both replicas ready")
        wait_until(lambda: all(status(url + "/recommend", body) == 200 for _ in range(20)), 90,
                   "both replicas answering /recommend")
        why: list[str] = []
        statuses = [status(url + "/recommend", body, why) for _ in range(100)]
        assert statuses == [200] * 100, (statuses, why[:5], log_tail(tmp_path / "serve.log"))
        wait_until(lambda: serve.counter("aimass_http_requests_total", endpoint="/recommend")
                   >= 100, 10, "the requests of both replicas counted together")

        os.kill(first[0], signal.SIGKILL)
        why = []
        statuses = [status(url + "/recommend", body, why) for _ in range(100)]
        # connections the dead one had queued are reset; the others are answered
        assert statuses[-80:] == [200] * 80, (statuses, why[:5], log_tail(tmp_path / "serve.log"))
        again = wait_until(lambda: len(children(serve.proc.pid)) == 2 and
                           children(serve.proc.pid), 60, "the replica started again")
        assert first[0] not in again and first[1] in again
        wait_http(url + "/readyz", 90)
        assert serve.proc.poll() is None
    finally:
        serve.stop()
    time.sleep(0.5)
    assert not any(Path(f"/proc/{p}").exists() for p in again)  # they stop with the parent
