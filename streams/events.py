"""Event contracts: typed records serialised with orjson, validated with a reason naming the field.

Every event has an ``id`` and an ``event_time`` (Unix seconds). Requests carry a ``tenant``, a
``user`` and ``context`` feature map, and a list of candidate ads, each with its own features.

Hostile values are bad input, refused where they enter with the field named (the limits below;
the README lists them): an event time more than :data:`MAX_CLOCK_SKEW` seconds in the future
(it would close every join window at once, and ClickHouse cannot store it), a number beyond
:data:`MAX_MAGNITUDE`, a feature name longer than :data:`MAX_NAME` or a string value longer
than :data:`MAX_STRING` characters, more than :data:`MAX_FEATURES` features.

>>> raw = encode(AdRequest(id="r1", event_time=1.7e9, tenant="t", user={"age": 30},
...                        candidates=[Candidate("ad1", {"genre": "Drama"})]))
>>> decode(AdRequest, raw).candidates[0].ad_id
'ad1'
>>> decode(Feedback, b'{"id": "f", "event_time": 1, "tenant": "t", "request_id": "r",'
...                  b' "ad_id": "a", "kind": "like"}')
Traceback (most recent call last):
...
streams.events.InvalidEvent: kind: must be one of ['click', 'impression'], got 'like'
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

Scalar = str | int | float | bool | None
Features = dict[str, Scalar]

_TENANT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_ID = 128
MAX_CANDIDATES = 1000
MAX_FEATURES = 512
MAX_NAME = 128  # characters of a feature name
MAX_STRING = 1024  # characters of a string feature value
MAX_MAGNITUDE = 1e15  # largest |number| of a feature (a millisecond timestamp fits)
MAX_INT = 2**63 - 1
MAX_CLOCK_SKEW = 300.0  # seconds an event may be stamped in the future
MAX_DEADLINE_AHEAD = 86400.0  # a request's deadline: within a day


class InvalidEvent(ValueError):
    """An event that does not meet its contract. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- field checks -----------------------------------------------------------------------------

def _req(d: dict, name: str, prefix: str = "") -> Any:
    if name not in d or d[name] is None:
        raise InvalidEvent(prefix + name, "is required")
    return d[name]


def _str(d: dict, name: str, prefix: str = "", max_len: int = MAX_ID) -> str:
    v = _req(d, name, prefix)
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str) or not v:
        raise InvalidEvent(prefix + name, f"must be a non-empty string, got {v!r}")
    if len(v) > max_len:
        raise InvalidEvent(prefix + name, f"longer than {max_len} characters")
    return v


def _time(d: dict, name: str = "event_time", ahead: float = MAX_CLOCK_SKEW) -> float:
    v = _req(d, name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise InvalidEvent(name, f"must be Unix seconds (a finite number >= 0), got {v!r}")
    if v > time.time() + ahead:
        raise InvalidEvent(name, f"is more than {ahead:.0f} s in the future ({v!r})")
    return float(v)


@functools.lru_cache(maxsize=4096)
def _tenant_ok(v: str) -> bool:
    return _TENANT.match(v) is not None


def _tenant(d: dict) -> str:
    v = _str(d, "tenant")
    if not _tenant_ok(v):
        raise InvalidEvent("tenant", "must match [A-Za-z0-9_.-]{1,64}")
    return v


def _features(d: dict, name: str, prefix: str = "", required: bool = True) -> Features:
    v = d.get(name)
    if v is None:
        if required:
            raise InvalidEvent(prefix + name, "is required")
        return {}
    if not isinstance(v, dict):
        raise InvalidEvent(prefix + name, f"must be an object of features, got {type(v).__name__}")
    if len(v) > MAX_FEATURES:
        raise InvalidEvent(prefix + name, f"has more than {MAX_FEATURES} features")
    if not _values_ok(v):
        _feature_error(v, name, prefix)
    return v


def _values_ok(v: dict) -> bool:
    """The hot path: exact JSON types within the limits, one type() each."""
    for k, x in v.items():
        if len(k) > MAX_NAME:
            return False
        t = x.__class__
        if t is str:
            if len(x) > MAX_STRING:
                return False
        elif t is float:
            if not -MAX_MAGNITUDE <= x <= MAX_MAGNITUDE:  # NaN fails too
                return False
        elif t is int:
            if not -MAX_INT <= x <= MAX_INT:
                return False
        elif x is not None and t is not bool:
            return False
    return True


def _feature_error(v: dict, name: str, prefix: str) -> None:
    """Name the first bad feature (the slow path, for an event about to be refused; also
    accepts subclasses of the scalar types)."""
    for k, x in v.items():
        where = f"{prefix}{name}.{k}" if len(k) <= MAX_NAME else f"{prefix}{name}"
        if not isinstance(k, str) or len(k) > MAX_NAME:
            raise InvalidEvent(where, f"a feature name is longer than {MAX_NAME} characters")
        if isinstance(x, float) and not math.isfinite(x):
            raise InvalidEvent(where, "must be finite")
        if isinstance(x, int | float) and not isinstance(x, bool) and \
                not -MAX_MAGNITUDE <= x <= MAX_MAGNITUDE and \
                (isinstance(x, float) or not -MAX_INT <= x <= MAX_INT):
            raise InvalidEvent(where, f"magnitude beyond {MAX_MAGNITUDE:g}" if isinstance(
                x, float) else f"integer beyond {MAX_INT}")
        if isinstance(x, str) and len(x) > MAX_STRING:
            raise InvalidEvent(where, f"longer than {MAX_STRING} characters")
        if x is not None and not isinstance(x, str | int | float | bool):
            raise InvalidEvent(where,
                               f"must be a string, number, boolean or null, got {type(x).__name__}")


def _candidates_checked(cands: list) -> list[Candidate]:
    """Field by field: the first bad one raises :class:`InvalidEvent` naming it."""
    parsed = []
    for i, c in enumerate(cands):
        if not isinstance(c, dict):
            raise InvalidEvent(f"candidates[{i}]", "must be an object")
        p = f"candidates[{i}]."
        parsed.append(Candidate(_str(c, "ad_id", p), _features(c, "features", p, False)))
    return parsed


def _candidates_fast(cands: list) -> list | None:
    """The candidates of a well-formed request (string ids, features of exact JSON scalar
    types within the limits), checked without building field names; None when any check
    fails (the field-by-field path then names it)."""
    out = []
    for c in cands:
        if c.__class__ is not dict:
            return None
        ad, f = c.get("ad_id"), c.get("features")
        if ad.__class__ is not str or not 0 < len(ad) <= MAX_ID:
            return None
        if f is None:
            f = {}
        elif f.__class__ is not dict or len(f) > MAX_FEATURES or not _values_ok(f):
            return None
        out.append(Candidate(ad, f))
    return out


def _choice(d: dict, name: str, choices: tuple[str, ...]) -> str:
    v = _req(d, name)
    if v not in choices:
        raise InvalidEvent(name, f"must be one of {sorted(choices)}, got {v!r}")
    return v


# -- records -----------------------------------------------------------------------------------

@dataclass(slots=True)
class Candidate:
    ad_id: str
    features: Features = field(default_factory=dict)


@dataclass(slots=True)
class AdRequest:
    """A request to rank candidate ads for one user in one context."""

    id: str
    event_time: float
    tenant: str
    user: Features
    candidates: list[Candidate]
    context: Features = field(default_factory=dict)
    priority: int = 0
    deadline: float | None = None
    served: bool = False  # answered already by a serving replica: the worker only joins it

    @classmethod
    def from_dict(cls, d: dict) -> AdRequest:
        cands = d.get("candidates")
        if not isinstance(cands, list) or not cands:
            raise InvalidEvent("candidates", "must be a non-empty list")
        if len(cands) > MAX_CANDIDATES:
            raise InvalidEvent("candidates", f"more than {MAX_CANDIDATES} candidates")
        parsed = _candidates_fast(cands)
        if parsed is None:  # something is off: the field-by-field path names it
            parsed = _candidates_checked(cands)
        priority = d.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
            raise InvalidEvent("priority", f"must be an integer 0..9, got {priority!r}")
        deadline = d.get("deadline")
        served = d.get("served", False)
        if served.__class__ is not bool:
            raise InvalidEvent("served", f"must be true or false, got {served!r}")
        return cls(
            id=_str(d, "id"), event_time=_time(d), tenant=_tenant(d),
            user=_features(d, "user"), candidates=parsed,
            context=_features(d, "context", required=False), priority=priority,
            deadline=None if deadline is None else _time(d, "deadline", MAX_DEADLINE_AHEAD),
            served=served,
        )


FEEDBACK_KINDS = ("click", "impression")


@dataclass(slots=True)
class Feedback:
    """An impression or a click on one candidate of one request."""

    id: str
    event_time: float
    tenant: str
    request_id: str
    ad_id: str
    kind: str

    @classmethod
    def from_dict(cls, d: dict) -> Feedback:
        return cls(id=_str(d, "id"), event_time=_time(d), tenant=_tenant(d),
                   request_id=_str(d, "request_id"), ad_id=_str(d, "ad_id"),
                   kind=_choice(d, "kind", FEEDBACK_KINDS))


@dataclass(slots=True)
class TrainingExample:
    """A labelled example: features and a 0/1 label (clicked or not)."""

    id: str
    event_time: float
    tenant: str
    features: Features
    label: int
    source: str = "user"

    @classmethod
    def from_dict(cls, d: dict) -> TrainingExample:
        label = _req(d, "label")
        if label not in (0, 1) or isinstance(label, float) and label != int(label):
            raise InvalidEvent("label", f"must be 0 or 1, got {label!r}")
        return cls(id=_str(d, "id"), event_time=_time(d), tenant=_tenant(d),
                   features=_features(d, "features"), label=int(label),
                   source=_str(d, "source", max_len=64) if "source" in d else "user")


@dataclass(slots=True)
class Recommendation:
    """Candidates ranked by click probability, and which model ranked them."""

    id: str
    event_time: float
    tenant: str
    request_id: str
    model_version: str
    ranked: list[dict]
    fallback: bool = False
    took_ms: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> Recommendation:
        ranked = _req(d, "ranked")
        if not isinstance(ranked, list):
            raise InvalidEvent("ranked", "must be a list")
        return cls(id=_str(d, "id"), event_time=_time(d), tenant=_tenant(d),
                   request_id=_str(d, "request_id"), model_version=_str(d, "model_version"),
                   ranked=ranked, fallback=bool(d.get("fallback", False)),
                   took_ms=float(d.get("took_ms", 0.0)))


@dataclass(slots=True)
class DeadLetter:
    """A message that could not be processed, kept whole with the reason, its original Kafka
    key and headers (text; bytes that are not UTF-8 escaped as ``\\xNN``)."""

    id: str
    event_time: float
    source_topic: str
    partition: int
    offset: int
    field: str
    reason: str
    payload: str
    key: str | None = None
    headers: list = field(default_factory=list)  # [[name, value], ...]

    @classmethod
    def from_dict(cls, d: dict) -> DeadLetter:
        return cls(id=_str(d, "id", max_len=512), event_time=_time(d),
                   source_topic=_str(d, "source_topic", max_len=249),
                   partition=int(d.get("partition", -1)), offset=int(d.get("offset", -1)),
                   field=str(d.get("field", "")), reason=_str(d, "reason", max_len=10_000),
                   payload=str(d.get("payload", "")), key=d.get("key"),
                   headers=list(d.get("headers") or []))

    @property
    def kafka_key(self) -> bytes:
        """The key to produce it with: the original one, else the source topic."""
        k = self.key if self.key is not None else self.source_topic
        return k.encode("utf-8", "surrogateescape")

    @property
    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(str(k), str(v).encode("utf-8", "surrogateescape")) for k, v in self.headers]


# -- wire format --------------------------------------------------------------------------------

def encode(event: Any) -> bytes:
    """Serialise a record (a dataclass) to JSON bytes."""
    return orjson.dumps(event)


def parse_object(raw: bytes | str, field: str = "value") -> dict:
    """Parse JSON that must be an object; raises :class:`InvalidEvent` naming ``field``."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(field, f"is not valid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise InvalidEvent(field, f"must be a JSON object, got {type(d).__name__}")
    return d


def decode(cls: type, raw: bytes | str | None) -> Any:
    """Parse and validate one event; raises :class:`InvalidEvent` naming the field."""
    if raw is None:
        raise InvalidEvent("value", "is empty (a tombstone or a null message)")
    return cls.from_dict(parse_object(raw))


def _text(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", "backslashreplace")


def dead_letter(raw: bytes | None, error: Exception, topic: str, partition: int = -1,
                offset: int = -1, now: float = 0.0, key: bytes | None = None,
                headers: list | None = None) -> DeadLetter:
    """Build the dead letter for ``raw``: the reason, the field, and the payload, the key and
    the headers kept whole."""
    field_name = error.field if isinstance(error, InvalidEvent) else ""
    reason = error.reason if isinstance(error, InvalidEvent) else f"{type(error).__name__}: {error}"
    return DeadLetter(id=f"{topic}/{partition}/{offset}", event_time=now, source_topic=topic,
                      partition=partition, offset=offset, field=field_name, reason=reason,
                      payload=_text(raw) or "", key=_text(key),
                      headers=[[k, _text(v) if isinstance(v, bytes) else str(v)]
                               for k, v in (headers or [])])
