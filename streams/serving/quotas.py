"""Per-tenant quotas of the serving API: requests/s on ``/recommend`` and ``/predict``,
examples/s on ``POST /examples``, and the most models a tenant's graph may declare.

Quotas are declared per tenant in the tenants file (``AIMASS_TENANTS``, JSON), ``"*"`` giving
the default of tenants not named; a quota left out is unlimited::

    {"acme": {"quotas": {"requests_per_s": 200, "examples_per_s": 5000, "max_models": 8}},
     "*":    {"quotas": {"requests_per_s": 50}}}

A tenant's model graph may carry ``quotas`` too (:mod:`streams.control.specs`, applied by an
admin): each one it names replaces the file's for that tenant, as soon as the replica reads it.
``max_models`` of the file caps the graphs an admin may apply for the tenant.

Each quota is a token bucket (rate ``r`` per second, one second's worth of burst): a call that
finds too few tokens is refused with 429 and ``Retry-After`` (the whole seconds until it would
pass), counted in ``aimass_quota_exceeded_total{tenant, quota}``, and takes no tokens. The
replicas of one ``aimass serve --workers N`` each enforce ``r / N``: the kernel spreads
connections evenly over them, so the tenant's total stays near ``r``.

>>> q = Quotas({"acme": {"quotas": {"requests_per_s": 2}}}, clock=lambda: 0.0)
>>> [q.take("acme", "requests_per_s") for _ in range(3)]  # a burst of 2, then 0.5 s to wait
[None, None, 1]
>>> q.take("other", "requests_per_s") is None  # no quota declared
True
>>> Quotas.parse({"acme": {"quotas": {"requests_per_s": -1}}})
Traceback (most recent call last):
...
ValueError: tenants file: acme.quotas.requests_per_s must be a positive number, got -1
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

KINDS = ("requests_per_s", "examples_per_s")  # rates, enforced per call
LIMITS = ("max_models",)  # counts, checked when a model graph is applied


class QuotaExceeded(Exception):
    def __init__(self, tenant: str, quota: str, retry_after: int):
        super().__init__(f"tenant {tenant!r} is over its {quota} quota; retry in "
                         f"{retry_after} s")
        self.tenant, self.quota, self.retry_after = tenant, quota, retry_after


class Quotas:
    def __init__(self, spec: dict | None = None, replicas: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 overrides: Callable[[], dict] | None = None):
        self.rates = self.parse(spec or {})
        self.overrides = overrides or dict  # tenant -> quotas of its model graph
        self.replicas = max(1, replicas)
        self.clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}  # -> [tokens, last refill]
        self._lock = threading.Lock()

    @staticmethod
    def parse(spec: dict) -> dict[str, dict[str, float]]:
        """tenant -> quota -> rate, validated; ValueError names the bad path."""
        if not isinstance(spec, dict):
            raise ValueError("tenants file: must be an object of tenants")
        out: dict[str, dict[str, float]] = {}
        for tenant, conf in spec.items():
            quotas = conf.get("quotas", {}) if isinstance(conf, dict) else None
            if not isinstance(quotas, dict):
                raise ValueError(f"tenants file: {tenant}.quotas must be an object")
            for kind, rate in quotas.items():
                if kind not in KINDS + LIMITS:
                    raise ValueError(f"tenants file: {tenant}.quotas.{kind} is not a quota; "
                                     f"known: {', '.join(KINDS + LIMITS)}")
                if isinstance(rate, bool) or not isinstance(rate, int | float) or \
                        not math.isfinite(rate) or rate <= 0:
                    raise ValueError(f"tenants file: {tenant}.quotas.{kind} must be a positive "
                                     f"number, got {rate!r}")
            out[tenant] = {k: float(v) for k, v in quotas.items()}
        return out

    @classmethod
    def from_file(cls, path: Path | None, replicas: int = 1) -> Quotas:
        if path is None:
            return cls(replicas=replicas)
        try:
            spec = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"tenants file {path}: {exc}") from None
        return cls(spec, replicas)

    def named(self, tenant: str) -> bool:
        """Is ``tenant`` named by the file or its graph (its own metric label)?"""
        return tenant in self.rates or tenant in self.overrides()

    def limit(self, tenant: str, kind: str) -> float | None:
        """The file's quota ``kind`` for ``tenant`` (its own, else ``"*"``'s), or None."""
        return self.rates.get(tenant, self.rates.get("*", {})).get(kind)

    def rate(self, tenant: str, kind: str) -> float | None:
        own = self.overrides().get(tenant)
        r = own.get(kind) if own and kind in own else self.limit(tenant, kind)
        return None if r is None else r / self.replicas

    def take(self, tenant: str, kind: str, n: int = 1) -> int | None:
        """Take ``n`` tokens: None if they were there, else the seconds to wait (nothing
        taken). A call larger than the burst waits for the tokens it needs."""
        rate = self.rate(tenant, kind)
        if rate is None:
            return None
        now = self.clock()
        with self._lock:
            b = self._buckets.setdefault((tenant, kind), [rate, now])
            b[0] = min(max(rate, n), b[0] + (now - b[1]) * rate)
            b[1] = now
            if b[0] >= n:
                b[0] -= n
                return None
            return max(1, math.ceil((n - b[0]) / rate))

    def check(self, tenant: str, kind: str, n: int = 1) -> None:
        wait = self.take(tenant, kind, n)
        if wait is not None:
            raise QuotaExceeded(tenant, kind, wait)
