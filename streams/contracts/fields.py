"""The checks of one field of an event, each raising :class:`InvalidEvent` that names the
field, and the limits they hold values to (listed in the README). Hostile values are bad
input, refused where they enter: an event time more than :data:`MAX_CLOCK_SKEW` seconds in the
future (it would close every join window at once, and ClickHouse cannot store it), a number
beyond :data:`MAX_MAGNITUDE`, a feature name longer than :data:`MAX_NAME` or a string value
longer than :data:`MAX_STRING` characters, more than :data:`MAX_FEATURES` features.

>>> features({"f": {"price": 1e308}}, "f")
Traceback (most recent call last):
...
streams.contracts.fields.InvalidEvent: f.price: magnitude beyond 1e+15

An id may be a string or a whole number (its digits), however JSON writes it:

>>> string({"id": 42}, "id"), string({"id": 42.0}, "id")
('42', '42')
"""

from __future__ import annotations

import functools
import math
import re
import time
from typing import Any

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
MAX_WEIGHT = 1000.0  # a training example's weight (one row may count as many, not as all)


class InvalidEvent(ValueError):
    """An event that does not meet its contract. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# -- field checks -----------------------------------------------------------------------------

def required(d: dict, name: str, prefix: str = "") -> Any:
    if name not in d or d[name] is None:
        raise InvalidEvent(prefix + name, "is required")
    return d[name]


def string(d: dict, name: str, prefix: str = "", max_len: int = MAX_ID) -> str:
    v = required(d, name, prefix)
    if isinstance(v, int) and not isinstance(v, bool) or _whole(v):
        v = str(int(v))
    if not isinstance(v, str) or not v:
        raise InvalidEvent(prefix + name, f"must be a non-empty string, got {v!r}")
    if len(v) > max_len:
        raise InvalidEvent(prefix + name, f"longer than {max_len} characters")
    return v


def weight_ok(v) -> bool:
    """A number (not a bool) in [0, :data:`MAX_WEIGHT`]; NaN is not."""
    return v.__class__ is not bool and isinstance(v, int | float) and 0 <= v <= MAX_WEIGHT


def weight(d: dict, name: str = "weight") -> float:
    """An example's weight: optional (1), a finite number in [0, :data:`MAX_WEIGHT`]; 0 is
    scored and counted nowhere, 2 counts as the example seen twice."""
    v = d.get(name, 1.0)
    if not weight_ok(v):
        raise InvalidEvent(name, f"must be a number in [0, {MAX_WEIGHT:g}], got {v!r}")
    return float(v)


def timestamp(d: dict, name: str = "event_time", ahead: float = MAX_CLOCK_SKEW) -> float:
    v = required(d, name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise InvalidEvent(name, f"must be Unix seconds (a finite number >= 0), got {v!r}")
    if v > time.time() + ahead:
        raise InvalidEvent(name, f"is more than {ahead:.0f} s in the future ({v!r})")
    return float(v)


@functools.lru_cache(maxsize=4096)
def _tenant_ok(v: str) -> bool:
    return _TENANT.match(v) is not None


def tenant(d: dict) -> str:
    v = string(d, "tenant")
    if not _tenant_ok(v):
        raise InvalidEvent("tenant", "must match [A-Za-z0-9_.-]{1,64}")
    return v


def features(d: dict, name: str, prefix: str = "", required: bool = True) -> Features:
    v = d.get(name)
    if v is None:
        if required:
            raise InvalidEvent(prefix + name, "is required")
        return {}
    if not isinstance(v, dict):
        raise InvalidEvent(prefix + name, f"must be an object of features, got {type(v).__name__}")
    if len(v) > MAX_FEATURES:
        raise InvalidEvent(prefix + name, f"has more than {MAX_FEATURES} features")
    if not values_ok(v):
        _feature_error(v, name, prefix)
    return v


def _whole(x) -> bool:
    """A float with no fraction within :data:`MAX_INT`: an integer as JSON may write it."""
    return x.__class__ is float and x.is_integer() and -MAX_INT <= x <= MAX_INT


def values_ok(v: dict) -> bool:
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


def choice(d: dict, name: str, choices: tuple[str, ...]) -> str:
    v = required(d, name)
    if v not in choices:
        raise InvalidEvent(name, f"must be one of {sorted(choices)}, got {v!r}")
    return v
