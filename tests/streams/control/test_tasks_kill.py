"""A train-file task whose worker is killed (SIGKILL) midway: the next worker resumes it from
the progress recorded, and every row is learned exactly once (issue 14's backfill goal, at a
smaller size; ``python -m ops.bench.tasks`` runs the million rows)."""

from __future__ import annotations

import time

import pytest

from ops.bench.tasks import state, write_rows
from ops.harness import WorkerProcess, settings_env
from streams.control.tasks import TaskBoard
from tests.helpers import aimass

pytestmark = [pytest.mark.services, pytest.mark.control]
ROWS = 100_000
RATE = 20_000  # rows/s: the task sends for 5 s, room to kill it midway


def watch(settings) -> TaskBoard:
    """A board that follows the topic as the worker writes it (progress about every second)."""
    board = TaskBoard(settings)
    board.start()
    assert board.caught_up.wait(30)
    return board


def test_a_task_resumes_after_its_worker_is_killed(fresh, tmp_path):
    s = fresh.model_copy(update={"models": "ftrl", "ensembles": "", "checkpoint_interval": 1.0,
                                 "holdout_fraction": 0.0})
    env = settings_env(s)
    data = tmp_path / "rows.csv"
    write_rows(data, ROWS)
    first = WorkerProcess(s, tmp_path / "worker-1.log", loglevel="info")
    second, board = None, watch(s)
    try:
        first.wait_ready()
        res = aimass("tasks", "submit", "train-file", "--tenant", "big", "--param",
                     f"path={data}", "--param", "label=clicked", "--param", f"rate={RATE}",
                     env=env)
        assert res.returncode == 0, res.stderr
        task_id = res.stdout.split()[1]
        deadline = time.monotonic() + 120
        while (t := board.get(task_id)) is None or t.done < ROWS // 10:
            assert time.monotonic() < deadline, t
            assert t is None or t.state in ("queued", "running"), t
            time.sleep(0.05)
        first.stop(kill=True)  # mid-task: the record says running, with its progress
        assert state(s, task_id).state == "running"

        second = WorkerProcess(s, tmp_path / "worker-2.log", loglevel="info")
        deadline = time.monotonic() + 300
        while (t := state(s, task_id)).state != "done":
            assert time.monotonic() < deadline and t.state in ("queued", "running"), t
            time.sleep(1.0)
        assert (t.done, t.total) == (ROWS, ROWS) and t.worker != ""
        assert "resumed at" in second.log.read_text()
        second.wait_for("aimass_checkpoint_examples", ROWS, 300, tenant="big")
        time.sleep(3)  # a checkpoint more: nothing learned twice shows as more than ROWS
        assert second.counter("aimass_checkpoint_examples", tenant="big") == ROWS
    finally:
        board.stop()
        if second is not None:
            second.stop()
        if first.proc.poll() is None:
            first.stop()
