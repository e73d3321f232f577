"""The worker's side of tasks (:mod:`streams.control.tasks`): a thread that runs, one at a
time, the tasks this worker owns (their partition of the examples topic is assigned to it),
picked by :func:`~streams.control.tasks.pick`, and writes their state and progress back.

A task left ``running`` by a worker that has since lost it (killed, or the partition moved) is
resumed from the progress it recorded. A task whose cancel arrives stops at its next chunk. A
task whose partition moves away while it runs stops there too, unmarked: its new owner resumes
it. Anything a task raises fails that task, with the message, and the runner goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from streams.control.tasks import FINAL, Task, TaskBoard, TaskLog, pick

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.0  # seconds between progress records of a running task


class Stop(Exception):
    """Raised by a task's ``progress`` when it must stop: cancelled, or no longer ours."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


# a handler runs a task from ``start`` (rows already done) and reports with
# ``progress(done, total)``, which raises Stop when the task must stop
Handler = Callable[[Task, int, Callable[[int, int | None], None]], int]


class TaskRunner(threading.Thread):
    def __init__(self, board: TaskBoard, log_: TaskLog, owns: Callable[[Task], bool],
                 handlers: dict[str, Handler], name: str, poll: float = 1.0):
        super().__init__(daemon=True, name="tasks")
        self.board, self.out, self.owns, self.handlers = board, log_, owns, handlers
        self.me, self.poll = name, poll
        self.ran: dict[str, int] = {}  # tenant -> tasks run here (fairness)
        # ids this runner ended: the board, read back from the topic, may not show it yet
        self.ended: set[str] = set()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                if not self.step():
                    self._halt.wait(self.poll)
            except Exception:  # the topic away: try again later
                log.exception("task runner step failed")
                self._halt.wait(5 * self.poll)

    def step(self) -> bool:
        """Run the next task, or mark a cancel; False if there was nothing to do."""
        mine = [t for t in self.board.all()
                if t.state not in FINAL and t.id not in self.ended and self.owns(t)]
        for t in mine:
            if t.cancel_requested and t.state == "queued":
                self.out.write(t.with_state("cancelled", time.time(), worker=self.me))
                self.ended.add(t.id)
                return True
        task = pick(mine, self.ran)
        if task is None:
            return False
        self.ran[task.tenant] = self.ran.get(task.tenant, 0) + 1
        self.execute(task)
        return True

    def execute(self, task: Task) -> Task:
        done = self._execute(task)
        if done.state in FINAL:
            self.ended.add(task.id)
        return done

    def _execute(self, task: Task) -> Task:
        start = task.done
        if task.state == "running":
            log.info("task %s (%s, tenant %s) resumed at %d, left by %s", task.id, task.kind,
                     task.tenant, start, task.worker or "?")
        current = task.with_state("running", time.time(), worker=self.me, error="")
        self.out.write(current)
        last = [time.monotonic()]

        def progress(done: int, total: int | None) -> None:
            nonlocal current
            seen = self.board.get(task.id)
            if self._halt.is_set():
                raise Stop("the worker is stopping")
            if seen is not None and seen.cancel_requested:
                raise Stop("cancelled")
            if not self.owns(task):
                raise Stop("moved to another worker")
            current = current.with_state("running", time.time(), done=done, total=total)
            if time.monotonic() - last[0] >= PROGRESS_EVERY:
                self.out.write(current)
                last[0] = time.monotonic()

        try:
            done = self.handlers[task.kind](task, start, progress)
        except Stop as stop:
            if stop.why == "cancelled":
                current = current.with_state("cancelled", time.time())
                self.out.write(current)
            else:  # left running with its progress: whoever owns it next resumes it
                self.out.write(current)
            log.info("task %s stopped: %s", task.id, stop.why)
            return current
        except Exception as exc:
            current = current.with_state("failed", time.time(), error=str(exc)[:2000])
            self.out.write(current)
            log.warning("task %s (%s, tenant %s) failed: %s", task.id, task.kind, task.tenant,
                        exc)
            return current
        total = current.total if current.total is not None else done
        current = current.with_state("done", time.time(), done=done, total=total)
        self.out.write(current)
        log.info("task %s (%s, tenant %s) done: %d", task.id, task.kind, task.tenant, done)
        return current
