"""``/tasks``: submit a task (``POST /tasks``, trainer role on its tenant), see one
(``GET /tasks/{id}``) or those of the caller's tenants (``GET /tasks``, viewer role), cancel one
(``POST /tasks/{id}/cancel``, trainer role). Submissions and cancels are recorded in the audit
trail. The state comes from the replica's view of the tasks topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from streams.contracts.fields import InvalidEvent
from streams.control.audit import AuditEvent, task_event
from streams.control.tasks import FINAL, TaskBoard, TaskLog, submission
from streams.serving.http import PRINCIPAL, _body, _error, _ok


class NoSuchTask(LookupError):
    field = "id"


class TaskRoutes:
    def __init__(self, board: TaskBoard, out: TaskLog,
                 audit: Callable[[AuditEvent], object] | None = None):
        self.board, self.out, self.audit = board, out, audit

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/tasks", self.submit)
        app.router.add_get("/tasks", self.list)
        app.router.add_get("/tasks/{id}", self.show)
        app.router.add_post("/tasks/{id}/cancel", self.cancel)

    async def _record(self, event: AuditEvent) -> None:
        if self.audit is not None:
            await asyncio.to_thread(self.audit, event)

    async def submit(self, request: web.Request) -> web.Response:
        who = request[PRINCIPAL]
        d = await _body(request)
        task = submission(d, f"api:{who.name}", time.time())
        who.check("tasks", task.tenant)
        try:
            await asyncio.to_thread(self.out.write, task)
        except Exception as exc:  # the broker away: nothing queued
            return _error(503, f"the task was not queued: {exc}", retry_after=5)
        await self._record(task_event(task.submitted_by, "task.submitted", task))
        return _ok(task.to_doc(), status=202)

    def _task(self, request: web.Request, action: str):
        task = self.board.get(request.match_info["id"])
        if task is None:
            raise NoSuchTask(f"no task {request.match_info['id']!r}")
        request[PRINCIPAL].check(action, task.tenant)
        return task

    async def show(self, request: web.Request) -> web.Response:
        task = self._task(request, "models")
        return _ok({**task.to_doc(), "cancel_requested": task.cancel_requested})

    async def list(self, request: web.Request) -> web.Response:
        who = request[PRINCIPAL]
        state = request.query.get("state")
        if state is not None and state not in ("queued", "running", "done", "failed",
                                               "cancelled"):
            raise InvalidEvent("state", "must be queued, running, done, failed or cancelled")
        tasks = sorted((t for t in self.board.all() if who.sees(t.tenant)
                        and (state is None or t.state == state)),
                       key=lambda t: t.submitted_at, reverse=True)
        return _ok({"tasks": [t.to_doc() for t in tasks[:1000]]})

    async def cancel(self, request: web.Request) -> web.Response:
        task = self._task(request, "tasks")
        if task.state in FINAL:
            return _error(409, f"task {task.id} is {task.state} already", "id")
        await asyncio.to_thread(self.out.cancel, task.id)
        await self._record(task_event(f"api:{request[PRINCIPAL].name}", "task.cancelled",
                                      task))
        return _ok({"id": task.id, "cancel_requested": True}, status=202)
