"""A backfill as a task, at scale: a labelled file of ``--rows`` rows (default 1,000,000)
submitted as a ``train-file`` task to a worker on a real broker, with the worker killed
(SIGKILL) at ``--kill-at`` of the rows sent and a new one started; the task resumes from its
recorded progress. Reported: seconds to the task done and to every row learned, rows/s, the row
it resumed at, and whether each row was learned exactly once (the checkpoint's example count).
The same file without a kill, in the same run, is the baseline.

    python -m ops.bench.tasks [--rows 1000000] [--kill-at 0.5] [--backends kafka] [--json PATH]
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ops.harness import WorkerProcess
from streams.control.tasks import TaskBoard, TaskLog, submission

from .common import backend, parser, print_table, write_json


def write_rows(path: Path, n: int, seed: int = 5) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    pd.DataFrame({"site": rng.choice([f"s{i}" for i in range(200)], n),
                  "hour": rng.integers(0, 24, n), "x": x.round(4),
                  "clicked": (x + rng.normal(size=n) > 0).astype(int)}).to_csv(path, index=False)


def state(settings, task_id: str):
    board = TaskBoard(settings)
    board.read_all(60.0)
    return board.get(task_id)


def run(settings, data: Path, rows: int, kill_at: float, logs: Path) -> dict:
    s = settings.model_copy(update={"models": "ftrl", "ensembles": "",
                                    "holdout_fraction": 0.0, "checkpoint_interval": 5.0})
    tenant = f"bench{int(kill_at * 100)}"
    worker = WorkerProcess(s, logs / f"{tenant}-1.log", loglevel="info")
    worker.wait_ready()
    task = submission({"kind": "train-file", "tenant": tenant,
                       "params": {"path": str(data), "label": "clicked"}}, "bench", time.time())
    started = time.monotonic()
    TaskLog(s).write(task)
    killed_at, second = None, None
    try:
        while (t := state(s, task.id)) is None or t.state != "done":
            assert t is None or t.state in ("queued", "running"), t
            if kill_at and killed_at is None and t is not None and t.total \
                    and t.done >= kill_at * t.total:
                killed_at = t.done
                worker.stop(kill=True)
                second = WorkerProcess(s, logs / f"{tenant}-2.log", loglevel="info")
            time.sleep(1.0)
        task_done = time.monotonic() - started
        last = second or worker
        last.wait_for("aimass_checkpoint_examples", rows, 3600, tenant=tenant)
        learned_s = time.monotonic() - started
        time.sleep(6)  # one checkpoint more
        learned = int(last.counter("aimass_checkpoint_examples", tenant=tenant))
        resumed = None
        if second is not None:
            m = re.search(r"resumed at (\d+)", second.log.read_text())
            resumed = int(m.group(1)) if m else None
    finally:
        for w in (worker, second):
            if w is not None and w.proc.poll() is None:
                w.stop()
    return {"mode": "killed midway" if kill_at else "no kill", "rows": rows,
            "killed_at_row": killed_at, "resumed_at_row": resumed,
            "task_done_s": round(task_done, 1), "all_learned_s": round(learned_s, 1),
            "rows_per_s": round(rows / learned_s, 1), "learned": learned,
            "learned_once": learned == rows}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--kill-at", type=float, default=0.5)
    p.set_defaults(backends="kafka")
    args = p.parse_args()
    out = []
    for kind in args.backends.split(","):
        with backend(kind, args.cache_dir.resolve()) as s:
            data = Path(s.data_dir) / "rows.csv"
            write_rows(data, args.rows)
            for kill_at in (0.0, args.kill_at):
                row = {"backend": kind, **run(s, data, args.rows, kill_at, Path(s.data_dir))}
                print(row, flush=True)
                out.append(row)
        base = next(r for r in out if r["backend"] == kind and r["mode"] == "no kill")
        for r in out:
            if r["backend"] == kind:
                r["time_vs_no_kill"] = round(r["all_learned_s"] / base["all_learned_s"], 3)
    print_table(out, ["backend", "mode", "rows", "killed_at_row", "resumed_at_row",
                      "task_done_s", "all_learned_s", "rows_per_s", "learned", "learned_once",
                      "time_vs_no_kill"])
    write_json(args.json, out)


if __name__ == "__main__":
    main()
