"""Model graphs on the compacted ``model-specs`` topic: published (CLI, API), followed
(workers build from them, replicas show them).

A record is a signed state file (:mod:`streams.state.statefile`, kind ``model-spec``) keyed by
tenant, holding the spec as plain data, its version and who applied it. One that is not
signed with this process's key, or whose spec does not validate, is logged, counted and
skipped: the tenant keeps the graph it had. Nothing in it is executed (a spec names learner
kinds of :mod:`learners.registry` and numbers).

>>> from streams.control.specs import parse
>>> rec = SpecRecord("acme", 3, parse({"members": {"fm": {"kind": "fm"}}}), "ops", 1.0)
>>> back = open_record(b"k" * 32, seal_record(b"k" * 32, rec), "acme")
>>> back.version, list(back.spec.members), back.applied_by
(3, ['fm'], 'ops')
>>> open_record(b"x" * 32, seal_record(b"k" * 32, rec), "acme")
Traceback (most recent call last):
...
streams.state.statefile.StateRejected: bad signature: not signed with this key
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.contracts.topics import topic_names
from streams.control.exceptions import SpecError
from streams.control.specs import ModelSpec, parse
from streams.state.checkpoints import large_producer
from streams.state.follower import Follower
from streams.state.statefile import StateRejected, seal, unseal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpecRecord:
    tenant: str
    version: int
    spec: ModelSpec
    applied_by: str
    applied_at: float

    def to_doc(self) -> dict:
        return {"tenant": self.tenant, "version": self.version, "spec": self.spec.to_doc(),
                "applied_by": self.applied_by, "applied_at": self.applied_at}


def seal_record(key: bytes, rec: SpecRecord) -> bytes:
    return seal(key, "model-spec", {"tenant": rec.tenant, "created_at": rec.applied_at},
                rec.to_doc())


def open_record(key: bytes, data: bytes | None, tenant: str) -> SpecRecord:
    """The record in ``data``, or :class:`StateRejected` (bad signature, not a spec record,
    another tenant's, a spec that does not validate)."""
    _, doc = unseal(key, data, "model-spec")
    if not isinstance(doc, dict) or set(doc) != {"tenant", "version", "spec", "applied_by",
                                                  "applied_at"}:
        raise StateRejected("malformed model spec record: not its fields")
    if doc["tenant"] != tenant:
        raise StateRejected(f"signed for tenant {doc['tenant']!r}, keyed {tenant!r}")
    if not isinstance(doc["version"], int) or not isinstance(doc["applied_by"], str) \
            or not isinstance(doc["applied_at"], int | float):
        raise StateRejected("malformed model spec record: version, applied_by, applied_at")
    try:
        spec = parse(doc["spec"])
    except SpecError as exc:
        raise StateRejected(f"model spec does not validate: {exc}") from None
    return SpecRecord(tenant, doc["version"], spec, doc["applied_by"], float(doc["applied_at"]))


class SpecPublisher:
    def __init__(self, settings, key: bytes):
        self.settings, self.key = settings, key
        self.topic = topic_names(settings)["model-specs"]
        self._p = None

    def publish(self, tenant: str, spec: ModelSpec | None, version: int,
                applied_by: str) -> SpecRecord | None:
        """Publish ``spec`` as the tenant's graph (None: a tombstone, back to the default)
        and wait for the broker."""
        if self._p is None:
            self._p = large_producer(self.settings)
        rec = None if spec is None else SpecRecord(tenant, version, spec, applied_by,
                                                   time.time())
        value = None if rec is None else seal_record(self.key, rec)
        self._p.send_raw(self.topic, tenant.encode(), value)
        self._p.flush(what="model specs")
        return rec


class SpecFollower(Follower):
    """Background thread: every tenant's newest spec record."""

    role = "model-specs"

    def __init__(self, settings, key: bytes,
                 on_change: Callable[[str, SpecRecord | None], None] | None = None,
                 on_reject: Callable[[str], None] | None = None):
        super().__init__(settings)
        self.key, self.on_change, self.on_reject = key, on_change, on_reject
        self.records: dict[str, SpecRecord] = {}
        self.quotas: dict[str, dict] = {}  # tenant -> the quotas its graph declares
        self.errors = 0

    def take(self, key: bytes | None, value: bytes | None, offset: int = -1) -> None:
        """One record of the topic (a tombstone: the tenant is back to the default)."""
        tenant = (key or b"").decode("utf-8", "replace")
        if value is None:
            if tenant in self.records:
                self.records = {t: r for t, r in self.records.items() if t != tenant}
                self.quotas = {t: q for t, q in self.quotas.items() if t != tenant}
                if self.on_change:
                    self.on_change(tenant, None)
            return
        try:
            rec = open_record(self.key, value, tenant)
        except StateRejected as exc:
            self.errors += 1
            log.error("model spec at offset %s (key %r) not read: %s", offset, tenant,
                      exc.reason)
            if self.on_reject:
                self.on_reject(exc.code)
            return
        self.records = {**self.records, tenant: rec}  # readers in other threads see one map
        self.quotas = {**{t: q for t, q in self.quotas.items() if t != tenant},
                       **({tenant: rec.spec.quotas} if rec.spec.quotas else {})}
        if self.on_change:
            self.on_change(tenant, rec)


def read_specs(settings, key: bytes, timeout: float = 15.0) -> dict[str, SpecRecord]:
    """Every tenant's newest spec record, read to the end of the topic (a command's view)."""
    follower = SpecFollower(settings, key)
    follower.read_all(timeout)
    return dict(follower.records)


def version_of(known: dict[str, SpecRecord], tenant: str) -> int:
    """The version of ``tenant``'s graph in ``known`` (0: the default); the next is one more."""
    current = known.get(tenant)
    return current.version if current is not None else 0


def apply_spec(settings, key: bytes, tenant: str, spec: ModelSpec | None, actor: str,
               known: dict[str, SpecRecord]) -> SpecRecord | None:
    """Publish ``spec`` (None: remove) as ``tenant``'s graph, one version after the one in
    ``known`` (the records read so far)."""
    return SpecPublisher(settings, key).publish(tenant, spec, version_of(known, tenant) + 1,
                                                actor)
