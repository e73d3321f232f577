"""The audit trail: every admin action (a model graph applied or removed, an API key added or
revoked) is an event on the ``audit`` topic, and the worker stores it in ClickHouse's ``audit``
table with who did it, to which tenant, when, and what changed.

>>> ev = AuditEvent.new("cli:ops", "spec.applied", "acme", {"version": 2})
>>> back = decode(AuditEvent, encode(ev))
>>> back.actor, back.action, back.tenant, back.detail
('cli:ops', 'spec.applied', 'acme', {'version': 2})
>>> try:
...     decode(AuditEvent, b'{"id": "a", "event_time": 1, "actor": "x", "action": "rm -rf",'
...                        b' "tenant": "t", "detail": {}}')
... except InvalidEvent as exc:
...     print(exc.field, exc.reason[:11])
action must be one
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

import orjson

from streams.contracts.events import decode, encode  # noqa: F401 - the contract's codec
from streams.contracts.fields import InvalidEvent, choice, string, timestamp

log = logging.getLogger(__name__)

ACTIONS = ("key.added", "key.revoked", "spec.applied", "spec.removed", "task.submitted",
           "task.cancelled")
MAX_DETAIL = 64 * 1024


@dataclass(frozen=True)
class AuditEvent:
    id: str
    event_time: float
    actor: str  # "cli:<os user>" or "api:<key name>"
    action: str
    tenant: str  # "*" for every tenant
    detail: dict = field(default_factory=dict)

    @classmethod
    def new(cls, actor: str, action: str, tenant: str, detail: dict) -> AuditEvent:
        return cls(uuid.uuid4().hex, time.time(), actor, action, tenant, detail)

    @classmethod
    def from_dict(cls, d: dict) -> AuditEvent:
        detail = d.get("detail", {})
        if not isinstance(detail, dict) or len(orjson.dumps(detail)) > MAX_DETAIL:
            raise InvalidEvent("detail", f"must be an object under {MAX_DETAIL} bytes")
        return cls(id=string(d, "id"), event_time=timestamp(d),
                   actor=string(d, "actor", max_len=256), action=choice(d, "action", ACTIONS),
                   tenant=string(d, "tenant", max_len=64), detail=detail)

    def to_dict(self) -> dict:
        return asdict(self)


def spec_event(actor: str, tenant: str, spec, version: int, previous: int) -> AuditEvent:
    """A model graph applied (``spec``, now ``version``) or removed (``spec`` None)."""
    if spec is None:
        return AuditEvent.new(actor, "spec.removed", tenant, {"previous": previous})
    return AuditEvent.new(actor, "spec.applied", tenant, {
        "version": version, "previous": previous, "spec": spec.to_doc()})


def task_event(actor: str, action: str, task) -> AuditEvent:
    """A task submitted (with what it does) or cancelled."""
    detail = {"task": task.id, "kind": task.kind}
    if action == "task.submitted":
        detail.update(params=task.params, priority=task.priority)
    return AuditEvent.new(actor, action, task.tenant, detail)


def audit_rows(events: list[AuditEvent], now: int) -> list[dict]:
    return [{"audit_id": e.id, "event_time": int(e.event_time), "actor": e.actor,
             "action": e.action, "tenant": e.tenant, "detail": orjson.dumps(e.detail).decode(),
             "ingested_at": now} for e in events]


def record(settings, event: AuditEvent, timeout: float = 10.0) -> bool:
    """Send ``event`` to the audit topic and wait for the broker; False (logged) if it did
    not take it in ``timeout`` seconds: the action is done, its audit row is missing."""
    from streams.contracts.topics import topic_names
    from streams.producer import Delivery, EventProducer

    producer, delivery = EventProducer(settings, linger_ms=0), Delivery()
    topic = topic_names(settings)["audit"]
    try:
        producer.send_raw(topic, event.tenant.encode(), encode(event), delivery)
        producer.wait(delivery, timeout)
        return True
    except Exception as exc:  # the broker away: the action stands, the operator is told
        log.error("audit event %s %s (%s) not recorded: %s", event.action, event.tenant,
                  event.actor, exc)
        return False
