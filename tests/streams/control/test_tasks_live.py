"""Tasks on the real services: `aimass tasks submit train-file ... --wait` is run by the worker
(the rows are learned), an export task writes the tenant's snapshot where asked (serving reads
it back), and a task whose file is missing fails with the reason; `tasks list` shows them."""

from __future__ import annotations

import pytest

from ops.harness import WorkerProcess, settings_env
from streams.serving.snapshots import load_snapshot
from streams.state.statefile import load_key
from tests.helpers import PHISHING, aimass

pytestmark = [pytest.mark.services, pytest.mark.control]


def test_the_worker_runs_submitted_tasks(fresh, tmp_path):
    s = fresh.model_copy(update={"models": "ftrl", "ensembles": "average",
                                 "checkpoint_interval": 1.0})
    env = settings_env(s)
    worker = WorkerProcess(s, tmp_path / "worker.log", loglevel="info")
    try:
        worker.wait_ready()
        res = aimass("tasks", "submit", "train-file", "--tenant", "sec", "--param",
                     f"path={PHISHING}", "--param", "label=is_phishing", "--wait", env=env,
                     timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "done" in res.stdout and "1,250 of 1,250" in res.stdout
        worker.wait_for("aimass_checkpoint_examples", 1250, 120, tenant="sec")

        snap = tmp_path / "out" / "sec.snap"
        res = aimass("tasks", "submit", "export", "--tenant", "sec", "--param",
                     f"path={snap}", "--wait", env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        exported = load_snapshot(snap.read_bytes(), load_key(s))
        assert exported.tenant == "sec" and exported.outputs() == ["ftrl", "ensemble_average"]

        res = aimass("tasks", "submit", "train-file", "--tenant", "sec", "--param",
                     "path=/nowhere.csv", "--param", "label=y", "--wait", env=env,
                     timeout=300)
        assert res.returncode == 1 and "failed" in res.stdout and "no such file" in res.stdout

        listed = aimass("tasks", "list", env=env).stdout.splitlines()
        assert len(listed) == 3 and sum("done" in line for line in listed) == 2
        assert worker.proc.poll() is None
    finally:
        worker.stop()
