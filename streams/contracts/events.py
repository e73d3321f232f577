"""Event contracts: typed records serialised with orjson, validated with a reason naming the field.

Every event has an ``id`` and an ``event_time`` (Unix seconds). Requests carry a ``tenant``, a
``user`` and ``context`` feature map, and a list of candidate ads, each with its own features.

Hostile values are bad input, refused where they enter with the field named: the checks and
their limits are in :mod:`streams.contracts.fields`.

>>> raw = encode(AdRequest(id="r1", event_time=1.7e9, tenant="t", user={"age": 30},
...                        candidates=[Candidate("ad1", {"genre": "Drama"})]))
>>> decode(AdRequest, raw).candidates[0].ad_id
'ad1'
>>> decode(Feedback, b'{"id": "f", "event_time": 1, "tenant": "t", "request_id": "r",'
...                  b' "ad_id": "a", "kind": "like"}')
Traceback (most recent call last):
...
streams.contracts.fields.InvalidEvent: kind: must be one of ['click', 'impression'], got 'like'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.contracts.fields import (  # noqa: F401 - the limits are part of the contract
    MAX_CANDIDATES,
    MAX_CLOCK_SKEW,
    MAX_DEADLINE_AHEAD,
    MAX_FEATURES,
    MAX_ID,
    MAX_INT,
    MAX_MAGNITUDE,
    MAX_NAME,
    MAX_STRING,
    MAX_WEIGHT,
    Features,
    InvalidEvent,
    Scalar,
    choice,
    features,
    required,
    string,
    tenant,
    timestamp,
    values_ok,
    weight,
)


def _candidates_checked(cands: list) -> list[Candidate]:
    """Field by field: the first bad one raises :class:`InvalidEvent` naming it."""
    parsed = []
    for i, c in enumerate(cands):
        if not isinstance(c, dict):
            raise InvalidEvent(f"candidates[{i}]", "must be an object")
        p = f"candidates[{i}]."
        parsed.append(Candidate(string(c, "ad_id", p), features(c, "features", p, False)))
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
        elif f.__class__ is not dict or len(f) > MAX_FEATURES or not values_ok(f):
            return None
        out.append(Candidate(ad, f))
    return out


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
            id=string(d, "id"), event_time=timestamp(d), tenant=tenant(d),
            user=features(d, "user"), candidates=parsed,
            context=features(d, "context", required=False), priority=priority,
            deadline=None if deadline is None else timestamp(d, "deadline", MAX_DEADLINE_AHEAD),
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
        return cls(id=string(d, "id"), event_time=timestamp(d), tenant=tenant(d),
                   request_id=string(d, "request_id"), ad_id=string(d, "ad_id"),
                   kind=choice(d, "kind", FEEDBACK_KINDS))


@dataclass(slots=True)
class TrainingExample:
    """A labelled example: features, a 0/1 label (clicked or not) and a weight (how many
    examples it counts as, in learning and in every metric)."""

    id: str
    event_time: float
    tenant: str
    features: Features
    label: int
    source: str = "user"
    test: bool = False  # a test row: scored by every model, learned by none
    weight: float = 1.0

    @classmethod
    def from_dict(cls, d: dict) -> TrainingExample:
        label = required(d, "label")
        if label not in (0, 1) or isinstance(label, float) and label != int(label):
            raise InvalidEvent("label", f"must be 0 or 1, got {label!r}")
        test = d.get("test", False)
        if not isinstance(test, bool):
            raise InvalidEvent("test", f"must be true or false, got {test!r}")
        return cls(id=string(d, "id"), event_time=timestamp(d), tenant=tenant(d),
                   features=features(d, "features"), label=int(label),
                   source=string(d, "source", max_len=64) if "source" in d else "user",
                   test=test, weight=weight(d))


@dataclass(slots=True)
class Recommendation:
    """Candidates ranked by click probability, and what ranked them: the answer of
    ``/recommend`` and the record of the recommendations topic alike
    (:mod:`streams.serving.ranking`). ``served_by``: ``replica`` (an HTTP call) or ``worker``
    (a request that came through Kafka)."""

    request_id: str
    event_time: float
    tenant: str
    model_version: str
    model: str
    ranked: list[dict]
    fallback: bool = False
    fallback_kind: str | None = None
    took_ms: float = 0.0
    served_by: str = "replica"

    def body(self) -> dict:
        """The API's answer."""
        return {"request_id": self.request_id, "tenant": self.tenant,
                "model_version": self.model_version, "model": self.model,
                "fallback": self.fallback, "fallback_kind": self.fallback_kind,
                "ranked": self.ranked, "took_ms": self.took_ms}

    def record(self, body: bytes) -> bytes:
        """The recommendations topic's record (what :func:`encode` makes of it) from ``body``,
        the API's answer as encoded (:meth:`body`): its fields and the two it lacks, without
        encoding the ranked candidates a second time.

        >>> r = Recommendation("r1", 1.7e9, "t", "t:v1", "ftrl", [{"ad_id": "a", "score": 0.5}])
        >>> decode(Recommendation, r.record(orjson.dumps(r.body()))) == r
        True
        """
        return b"".join((body[:-1], b',"event_time":', orjson.dumps(self.event_time),
                         b',"served_by":', orjson.dumps(self.served_by), b"}"))

    @classmethod
    def from_dict(cls, d: dict) -> Recommendation:
        ranked = required(d, "ranked")
        if not isinstance(ranked, list):
            raise InvalidEvent("ranked", "must be a list")
        return cls(request_id=string(d, "request_id"), event_time=timestamp(d),
                   tenant=tenant(d), model_version=string(d, "model_version"),
                   model=string(d, "model"), ranked=ranked,
                   fallback=bool(d.get("fallback", False)),
                   fallback_kind=d.get("fallback_kind"), took_ms=float(d.get("took_ms", 0.0)),
                   served_by=string(d, "served_by", max_len=16))


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
        return cls(id=string(d, "id", max_len=512), event_time=timestamp(d),
                   source_topic=string(d, "source_topic", max_len=249),
                   partition=int(d.get("partition", -1)), offset=int(d.get("offset", -1)),
                   field=str(d.get("field", "")), reason=string(d, "reason", max_len=10_000),
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
                headers: list | None = None, event_id: str | None = None) -> DeadLetter:
    """Build the dead letter for ``raw``: the reason, the field, and the payload, the key and
    the headers kept whole. Its id is where it was read (topic, partition, offset), or for an
    event refused after it was read (late, orphaned, the wrong type) the event's id."""
    field_name = error.field if isinstance(error, InvalidEvent) else ""
    reason = error.reason if isinstance(error, InvalidEvent) else f"{type(error).__name__}: {error}"
    letter_id = f"{topic}/{partition}/{offset}" if event_id is None else f"{topic}/{event_id}"
    return DeadLetter(id=letter_id, event_time=now, source_topic=topic,
                      partition=partition, offset=offset, field=field_name, reason=reason,
                      payload=_text(raw) or "", key=_text(key),
                      headers=[[k, _text(v) if isinstance(v, bytes) else str(v)]
                               for k, v in (headers or [])])
