"""``aimass tasks``: submit a task (`tasks submit KIND --tenant T --param k=v ...`), list them,
show one, cancel one. The workers run them (:mod:`streams.control.runner`)."""

from __future__ import annotations

import getpass
import sys
import time

import orjson
from faust.cli import argument, option

from streams.settings import Settings


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _value(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _line(t: dict) -> str:
    size = f"{t['done']:,}" + (f" of {t['total']:,}" if t["total"] is not None else "")
    return (f"{t['id']}  {t['kind']:10} {t['tenant']:12} {t['state']:9} {size:>20}"
            + (f"  {t['error']}" if t["error"] else ""))


def register_tasks(app, settings: Settings) -> None:
    @app.command(argument("action", type=str),
                 argument("what", type=str, required=False, default=""),
                 option("--tenant", type=str, default="", help="The tenant (submit)."),
                 option("--param", "params", type=str, multiple=True,
                        help="A task parameter NAME=VALUE (repeat)."),
                 option("--priority", type=int, default=0, help="-10 to 10; higher first."),
                 option("--wait", is_flag=True, default=False,
                        help="submit: wait until the task is done, failed or cancelled."),
                 option("--json", "as_json", is_flag=True, default=False, help="JSON output."))
    async def tasks(self, action: str, what: str, tenant: str, params: tuple[str, ...],
                    priority: int, wait: bool, as_json: bool) -> None:
        """Long jobs the workers run: `tasks submit KIND --tenant T --param k=v` (KIND:
        train-file path,label; backfill url,query,label; export path), `tasks list`,
        `tasks show ID`, `tasks cancel ID`."""
        from streams.contracts.fields import InvalidEvent
        from streams.contracts.topics import ensure_topics
        from streams.control.audit import record, task_event
        from streams.control.tasks import FINAL, TaskBoard, TaskLog, submission

        actor = f"cli:{getpass.getuser()}"
        ensure_topics(settings)

        def board() -> TaskBoard:
            b = TaskBoard(settings)
            b.read_all()
            return b

        if action == "submit":
            pairs = [p.partition("=") for p in params]
            if any(not sep for _, sep, _ in pairs):
                _fail("--param takes NAME=VALUE")
            try:
                task = submission({"kind": what, "tenant": tenant, "priority": priority,
                                   "params": {k: _value(v) for k, _, v in pairs}},
                                  actor, time.time())
            except InvalidEvent as exc:
                _fail(f"{exc.field}: {exc.reason}")
            TaskLog(settings).write(task)
            record(settings, task_event(actor, "task.submitted", task))
            print(f"task {task.id} queued ({task.kind}, tenant {task.tenant})")
            if wait:  # one board, following the topic as the worker writes the task's state
                follower = TaskBoard(settings)
                follower.start()
                try:
                    while (seen := follower.get(task.id)) is None or seen.state not in FINAL:
                        time.sleep(0.5)
                finally:
                    follower.stop()
                print(_line(seen.to_doc()))
                if seen.state != "done":
                    raise SystemExit(1)
        elif action == "list":
            docs = sorted((t.to_doc() for t in board().all()),
                          key=lambda t: t["submitted_at"], reverse=True)
            if as_json:
                print(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode())
            else:
                for d in docs:
                    print(_line(d))
        elif action in ("show", "cancel"):
            task = board().get(what)
            if task is None:
                _fail(f"no task {what!r}")
            if action == "show":
                print(orjson.dumps({**task.to_doc(), "cancel_requested": task.cancel_requested},
                                   option=orjson.OPT_INDENT_2).decode())
            elif task.state in FINAL:
                _fail(f"task {task.id} is {task.state} already")
            else:
                TaskLog(settings).cancel(task.id)
                record(settings, task_event(actor, "task.cancelled", task))
                print(f"task {task.id}: cancel requested")
        else:
            _fail(f"unknown action {action!r}: submit, list, show or cancel")
