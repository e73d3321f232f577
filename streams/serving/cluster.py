"""``GET /cluster`` (viewer role): what ``aimass status --json`` shows, from a replica: the
worker group and its partitions, lag per partition, the trainer of each tenant (the caller's
tenants only) from the workers' ``/metrics`` (``AIMASS_CLUSTER_WORKERS``, default this
machine's worker), this replica with the version it serves per tenant, and the tasks queued
or running. Gathered in a
thread, at most once every two seconds; the broker away is a 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from streams.serving.http import PRINCIPAL, _error, _ok
from streams.serving.snapshots import ModelStore

CACHE_S = 2.0


class ClusterView:
    def __init__(self, gather: Callable[[], dict], store: ModelStore, name: str,
                 tasks: Callable[[], list] = list):
        self.gather, self.store, self.name, self.tasks = gather, store, name, tasks
        self._view: dict | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def _current(self) -> dict:
        async with self._lock:  # one gathering at a time; callers meanwhile share it
            if self._view is None or time.monotonic() - self._at > CACHE_S:
                self._view = await asyncio.to_thread(self.gather)
                self._at = time.monotonic()
            return self._view

    async def get(self, request: web.Request) -> web.Response:
        who = request[PRINCIPAL]
        try:
            view = await self._current()
        except Exception as exc:  # Kafka's own message: unreachable, no such group
            return _error(503, f"the cluster cannot be read now: {exc}", retry_after=5)
        served = {t: s.label for t, s in self.store.all().items() if who.sees(t)}
        return _ok({**view, "tenants": [t for t in view.get("tenants", [])
                                        if who.sees(t["tenant"])],
                    "replica": {"name": self.name, "versions": served},
                    "tasks": [t.to_doc() for t in self.tasks()
                              if t.state in ("queued", "running") and who.sees(t.tenant)]})
