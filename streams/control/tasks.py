"""Long jobs as tasks: submitted (CLI, API), queued on the compacted ``tasks`` topic, taken by
the workers, with their state, progress and errors there for anyone to read.

A task's record (key: its id) is its latest state. The submitter writes it ``queued``; from
then on only the worker that owns it writes it (``running`` with progress, ``done``,
``failed``). Which worker owns a task is the group's doing: the one that reads partition
``partition_for(id)`` of the examples topic, so a task moves with that partition when a worker
dies or the group rebalances, and the new owner resumes it from the progress recorded. A cancel
is a record of its own (key ``cancel:<id>``), so that a progress update cannot overwrite it.

>>> t = submission({"kind": "export", "tenant": "acme", "params": {"path": "/tmp/a.snap"}},
...                "cli:ops", now=10.0)
>>> (t.state, t.kind, t.tenant, t.priority)
('queued', 'export', 'acme', 0)
>>> submission({"kind": "export", "tenant": "acme", "params": {}}, "x")
Traceback (most recent call last):
...
streams.contracts.fields.InvalidEvent: params.path: is required
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field, replace

import orjson

from streams.contracts.fields import InvalidEvent
from streams.contracts.fields import tenant as valid_tenant
from streams.state.follower import Follower

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")
# kind -> (required params, optional params); every value a string or a number
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train-file": (("path", "label"), ("positive", "time_column", "test_share", "rate",
                                       "weight_column")),
    "evaluate": (("path", "label"), ("positive", "time_column", "rate", "weight_column")),
    "backfill": (("url", "query", "label"), ("id_column", "time_column", "weight_column")),
    "export": (("path",), ()),
    "replay": (("partition", "start", "end"), ("source_tenant",)),
}
CANCEL = "cancel:"
OFFSETS = ("partition", "start", "end")  # whole numbers, at least 0


@dataclass(frozen=True)
class Task:
    id: str
    kind: str
    tenant: str
    params: dict
    priority: int = 0  # higher first
    state: str = "queued"
    done: int = 0  # rows (or items) done
    total: int | None = None  # None: not known yet
    error: str = ""
    submitted_by: str = ""
    submitted_at: float = 0.0
    updated_at: float = 0.0
    worker: str = ""  # who runs (or ran) it
    cancel_requested: bool = False  # set from the cancel record, never stored

    def to_doc(self) -> dict:
        doc = asdict(self)
        del doc["cancel_requested"]
        return doc

    def encode(self) -> bytes:
        return orjson.dumps(self.to_doc())

    def with_state(self, state: str, now: float, **changes) -> Task:
        return replace(self, state=state, updated_at=now, **changes)

    @classmethod
    def decode(cls, raw: bytes) -> Task:
        d = orjson.loads(raw)
        if not isinstance(d, dict) or d.get("state") not in STATES or d.get("kind") not in KINDS:
            raise ValueError("not a task record")
        d.pop("cancel_requested", None)
        return cls(**d)


def _params(kind: str, params) -> dict:
    if not isinstance(params, dict):
        raise InvalidEvent("params", "must be an object")
    required, optional = KINDS[kind]
    for name in required:
        if name not in params or params[name] in (None, ""):
            raise InvalidEvent(f"params.{name}", "is required")
    for name, value in params.items():
        if name not in required + optional:
            raise InvalidEvent(f"params.{name}", f"is not a parameter of {kind}; known: "
                                                 f"{', '.join(required + optional)}")
        if isinstance(value, bool) or not isinstance(value, str | int | float) or \
                (isinstance(value, str) and len(value) > 10_000):
            raise InvalidEvent(f"params.{name}", "must be a string (under 10,000 characters) "
                                                 "or a number")
        if name in OFFSETS and (not isinstance(value, int) or value < 0):
            raise InvalidEvent(f"params.{name}", "must be a whole number, at least 0")
        if name == "rate" and (isinstance(value, str) or not 1 <= value < float("inf")):
            raise InvalidEvent(f"params.{name}", "must be a number of rows per second, at "
                                                 "least 1")
    if kind == "replay" and params["end"] <= params["start"]:
        raise InvalidEvent("params.end", "must be past start")
    return dict(params)


def submission(d: dict, actor: str, now: float = 0.0) -> Task:
    """A queued task from a submission (``kind``, ``tenant``, ``params``, ``priority``), or
    :class:`InvalidEvent` naming the field."""
    kind = d.get("kind")
    if kind not in KINDS:
        raise InvalidEvent("kind", f"must be one of {sorted(KINDS)}, got {kind!r}")
    tenant = valid_tenant(d)
    priority = d.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -10 <= priority <= 10:
        raise InvalidEvent("priority", "must be a whole number from -10 to 10")
    return Task(uuid.uuid4().hex[:16], kind, tenant, _params(kind, d.get("params", {})),
                priority, submitted_by=actor, submitted_at=now, updated_at=now)


def pick(tasks: list[Task], ran: dict[str, int]) -> Task | None:
    """The next task to run of ``tasks`` (queued, or left running by a worker that lost it):
    the highest priority; among equals the tenant that has had the fewest tasks run here
    (``ran``), so one tenant's many tasks never starve another's; then the smallest known
    size, then the oldest.

    >>> a1, a2 = Task("a1", "export", "a", {}, submitted_at=1), Task("a2", "export", "a", {}, submitted_at=2)
    >>> b1 = Task("b1", "export", "b", {}, submitted_at=3)
    >>> pick([a1, a2, b1], {"a": 1}).id, pick([a1, a2, b1], {}).id
    ('b1', 'a1')
    """
    ready = [t for t in tasks if t.state in ("queued", "running") and not t.cancel_requested]
    if not ready:
        return None
    return min(ready, key=lambda t: (-t.priority, ran.get(t.tenant, 0),
                                     t.total if t.total is not None else float("inf"),
                                     t.submitted_at))


class TaskBoard(Follower):
    """Every task's newest record, and the cancels, as read from the topic."""

    role = "tasks"

    def __init__(self, settings):
        super().__init__(settings)
        self.tasks: dict[str, Task] = {}
        self.cancels: set[str] = set()
        self.errors = 0

    def take(self, key: bytes | None, value: bytes | None, offset: int = -1) -> None:
        k = (key or b"").decode("utf-8", "replace")
        if value is None:
            return
        if k.startswith(CANCEL):
            self.cancels = self.cancels | {k[len(CANCEL):]}
            return
        try:
            task = Task.decode(value)
        except (ValueError, TypeError) as exc:
            self.errors += 1
            log.error("task record at offset %s (key %r) not read: %s", offset, k, exc)
            return
        self.tasks = {**self.tasks, task.id: task}

    def get(self, task_id: str) -> Task | None:
        t = self.tasks.get(task_id)
        if t is not None and task_id in self.cancels and t.state not in FINAL:
            t = replace(t, cancel_requested=True)
        return t

    def all(self) -> list[Task]:
        return [t for tid in self.tasks if (t := self.get(tid)) is not None]


@dataclass
class TaskLog:
    """Writes task records (and cancels) to the topic, waiting for the broker each time."""

    settings: object
    _producer: object = field(default=None, repr=False)

    def _p(self):
        if self._producer is None:
            from streams.producer import EventProducer

            self._producer = EventProducer(self.settings, linger_ms=0)
        return self._producer

    def _topic(self) -> str:
        from streams.contracts.topics import topic_names

        return topic_names(self.settings)["tasks"]

    def write(self, task: Task) -> None:
        p = self._p()
        p.send_raw(self._topic(), task.id.encode(), task.encode())
        p.flush(what="task records")

    def cancel(self, task_id: str) -> None:
        p = self._p()
        p.send_raw(self._topic(), (CANCEL + task_id).encode(), b"{}")
        p.flush(what="task records")
