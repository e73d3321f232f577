"""The fallback for a tenant with no model yet: ads ranked by their smoothed click rate in the
feedback ClickHouse already holds, (clicks + 1) / (impressions + 2).

One query for every tenant at once runs in a background thread every ``ttl`` seconds (the
``LIMIT ... BY`` keeps each tenant's most shown ``per_tenant`` ads); a request only reads the
table in memory. So a request never waits on ClickHouse, and a made-up tenant costs one dict
lookup that finds nothing.

>>> p = Popularity("clickhouse://nowhere:1/x")
>>> p.replace({"acme": {"a": 0.5, "b": 0.25}})
>>> p.scores("acme", ["b", "a", "new"]), p.scores("made-up", ["a"])
([0.25, 0.5, 0.0], None)
"""

from __future__ import annotations

import logging
import threading

from sinks.clickhouse import connect

log = logging.getLogger(__name__)

QUERY = ("SELECT tenant, ad_id, countIf(kind = 'click') AS c, countIf(kind = 'impression') AS n "
         "FROM feedback GROUP BY tenant, ad_id ORDER BY tenant, n DESC LIMIT {per_tenant} BY "
         "tenant")


class Popularity:
    def __init__(self, dsn: str, ttl: float = 60.0, per_tenant: int = 10_000,
                 on_error=None):
        self.dsn, self.ttl, self.per_tenant = dsn, ttl, per_tenant
        self.on_error = on_error
        self._tables: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Popularity:
        """Refresh in a daemon thread from now on (the first refresh at once)."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="popularity")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        ch = None
        while not self._stop.is_set():
            try:
                if ch is None:
                    ch = connect(self.dsn)
                rows = ch.query(QUERY.format(per_tenant=int(self.per_tenant)))
                tables: dict[str, dict[str, float]] = {}
                for tenant, ad, c, n in rows:
                    tables.setdefault(tenant, {})[ad] = (c + 1) / (n + 2)
                self.replace(tables)
            except Exception as exc:  # ClickHouse away: keep the last table, try again later
                log.info("popularity not refreshed: %s", exc)
                if self.on_error:
                    self.on_error(exc)
                ch = None
            self._stop.wait(self.ttl)

    def replace(self, tables: dict[str, dict[str, float]]) -> None:
        self._tables = tables  # one reference swap: readers see the old or the new table

    def scores(self, tenant: str, ad_ids: list[str]) -> list[float] | None:
        table = self._tables.get(tenant)
        if not table:
            return None
        return [table.get(a, 0.0) for a in ad_ids]
