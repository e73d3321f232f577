"""``/tenants/{tenant}/models``: a tenant's model graph over HTTP. ``GET`` (viewer) shows it
(or the default graph, ``"default": true``); ``PUT`` (admin) validates a spec and publishes
it, one version up; ``DELETE`` (admin) takes the tenant back to the default. A spec that does
not validate is a 400 naming the path in the spec (``"field": "spec.members.fm.kind"``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from streams.contracts.fields import InvalidEvent
from streams.contracts.fields import tenant as valid_tenant
from streams.control.audit import AuditEvent, spec_event
from streams.control.distribution import SpecRecord, version_of
from streams.control.exceptions import SpecError
from streams.control.specs import MAX_SPEC_BYTES, ModelSpec, parse
from streams.serving.http import PRINCIPAL, _body, _error, _ok

PATH = "/tenants/{tenant}/models"
Publish = Callable[[str, ModelSpec | None, int, str], SpecRecord | None]


class Graphs:
    """The routes, over the replica's view of the model-specs topic (``records``) and a
    publisher; without one (``publish`` None) a replica shows graphs but takes none."""

    def __init__(self, records: Callable[[], dict], default: ModelSpec,
                 publish: Publish | None = None,
                 audit: Callable[[AuditEvent], object] | None = None,
                 max_models: Callable[[str], float | None] = lambda tenant: None):
        self.records, self.default, self.publish = records, default, publish
        self.audit = audit  # records an admin action (the audit topic); None: not recorded
        self.max_models = max_models  # the tenants file's cap on a tenant's members

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.get)
        app.router.add_put(PATH, self.put)
        app.router.add_delete(PATH, self.delete)

    @staticmethod
    def _tenant(request: web.Request, action: str) -> str:
        tenant = request.match_info["tenant"]
        try:
            valid_tenant({"tenant": tenant})
        except InvalidEvent as exc:
            raise InvalidEvent("tenant", exc.reason) from None
        request[PRINCIPAL].check(action, tenant)
        return tenant

    async def get(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request, "models")
        rec = self.records().get(tenant)
        if rec is None:
            return _ok({"tenant": tenant, "version": 0, "default": True,
                        "spec": self.default.to_doc()})
        return _ok({**rec.to_doc(), "default": False})

    async def put(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request, "specs")
        if request.content_length is not None and request.content_length > MAX_SPEC_BYTES:
            raise InvalidEvent("body", f"a spec is at most {MAX_SPEC_BYTES} bytes")
        doc = await _body(request)
        try:
            spec = parse(doc)
        except SpecError as exc:
            field = "spec" + (f".{exc.path}" if exc.path else "")
            return _error(400, f"{field}: {exc.problem}", field)
        cap = self.max_models(tenant)
        if cap is not None and len(spec.members) > cap:
            return _error(400, f"spec.members: {len(spec.members)} members, over the tenant's "
                               f"max_models quota ({int(cap)})", "spec.members")
        return await self._publish(request, tenant, spec)

    async def delete(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request, "specs")
        if tenant not in self.records():
            return _error(404, f"tenant {tenant!r} has no model graph of its own", "tenant")
        return await self._publish(request, tenant, None)

    async def _publish(self, request: web.Request, tenant: str,
                       spec: ModelSpec | None) -> web.Response:
        if self.publish is None:
            return _error(503, "this replica takes no model graphs (no model-specs topic)")
        previous = version_of(self.records(), tenant)
        version = previous + 1
        actor = f"api:{request[PRINCIPAL].name}"
        try:
            await asyncio.to_thread(self.publish, tenant, spec, version, actor)
        except Exception as exc:  # the broker away: nothing applied, the caller may retry
            return _error(503, f"the model graph was not published: {exc}", retry_after=5)
        if self.audit is not None:
            await asyncio.to_thread(self.audit, spec_event(actor, tenant, spec, version,
                                                           previous))
        return _ok({"tenant": tenant, "version": version if spec is not None else 0,
                    "default": spec is None, "applied_by": actor})
