"""`aimass backfill URL --query SQL --label COLUMN`: history from PostgreSQL or MySQL/MariaDB.

The query's rows are read in batches through a server-side cursor (a table of any size, in
constant memory) and become :class:`TrainingExample` s as a file's rows do (:mod:`.training`):
the label column coerced to 0/1, every other column a feature, NULLs dropped. ``id_column``
names each example by a column (stable across runs and orders); without it the id is the
query's hash plus the row number (stable while the query orders its rows). ``time_column`` gives
each example its event time, ``weight_column`` its weight (a number in [0, 1000], as
``POST /examples`` takes it). A row with an unusable label or weight is not an example: it goes
to the dead letters with its reason, and the rest go on.

>>> rows = [{"id": 7, "clicked": "yes", "genre": "Drama", "at": None},
...         {"id": 8, "clicked": "maybe", "genre": "Comedy", "at": None}]
>>> conv = RowConverter("clicked", "acme", source="postgresql:ads", id_column="id")
>>> good, bad = conv.convert(rows, start=0)
>>> [(e.id, e.label, e.features) for e in good], [(d.offset, d.field) for d in bad]
([('postgresql:ads:7', 1, {'genre': 'Drama'})], [(1, 'label')])
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import orjson

from streams.contracts.events import MAX_ID, DeadLetter, InvalidEvent, TrainingExample, dead_letter
from streams.contracts.fields import weight
from streams.sources.files import _clean, to_label

SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql",
           "mariadb": "mysql"}


def _value(v):
    """A database value as a feature: numbers and strings as they are, times as Unix seconds,
    decimals as floats, anything else as its text."""
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.timestamp() if v.tzinfo else v.replace(tzinfo=dt.UTC).timestamp()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    return _clean(v)


@dataclass
class RowConverter:
    label: str
    tenant: str
    source: str  # "<kind>:<database>", also the id prefix
    id_column: str | None = None
    time_column: str | None = None
    query_hash: str = ""
    weight_column: str | None = None  # each row's weight, as given (see fields.weight)

    def convert(self, rows: list[dict], start: int, now: float | None = None
                ) -> tuple[list[TrainingExample], list[DeadLetter]]:
        now = time.time() if now is None else now
        good, bad = [], []
        for i, row in enumerate(rows, start):
            try:
                if self.label not in row:
                    raise InvalidEvent("label", f"the query returns no column {self.label!r}")
                y = to_label(_value(row[self.label]))
                if self.id_column:
                    key = _value(row.get(self.id_column))
                    if key is None:
                        raise InvalidEvent("id", f"column {self.id_column!r} is NULL")
                    ex_id = f"{self.source}:{key}"
                else:
                    ex_id = f"{self.source}:{self.query_hash}:{i}"
                if len(ex_id) > MAX_ID:  # cut, two ids could become one: refuse instead
                    raise InvalidEvent("id", f"{ex_id[:40]}... is longer than {MAX_ID} "
                                             "characters")
                t = now
                if self.time_column:
                    t = _value(row.get(self.time_column))
                    if not isinstance(t, int | float):
                        raise InvalidEvent("event_time", f"column {self.time_column!r} is not "
                                                         f"a time: {t!r}")
                w = 1.0
                if self.weight_column:
                    w = weight({"weight": _value(row.get(self.weight_column))})
                skip = (self.label, self.id_column, self.time_column, self.weight_column)
                feats = {str(k): v for k, raw in row.items()
                         if k not in skip and (v := _value(raw)) is not None}
                good.append(TrainingExample(id=ex_id, event_time=float(t),
                                            tenant=self.tenant, features=feats, label=y,
                                            source=self.source[:64], weight=w))
            except InvalidEvent as exc:
                raw = orjson.dumps({k: _value(v) for k, v in row.items()})
                bad.append(dead_letter(raw, exc, f"backfill:{self.source}", -1, i, now))
        return good, bad


def _connect(url: str):
    u = urlparse(url)
    kind = SCHEMES.get(u.scheme)
    if kind is None:
        raise ValueError(f"unsupported database URL {url!r}: use postgresql://... or mysql://...")
    if kind == "postgresql":
        import psycopg

        return kind, psycopg.connect(url)
    import pymysql

    return kind, pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                                 user=unquote(u.username or "root"),
                                 password=unquote(u.password or ""),
                                 database=(u.path or "/").strip("/") or None,
                                 cursorclass=pymysql.cursors.SSDictCursor)


def read_rows(url: str, query: str, batch: int = 5000) -> Iterator[list[dict]]:
    """The query's rows, ``batch`` at a time, through a server-side cursor."""
    kind, conn = _connect(url)
    try:
        if kind == "postgresql":
            from psycopg.rows import dict_row

            with conn.cursor(name="aimass_backfill", row_factory=dict_row) as cur:
                cur.itersize = batch
                cur.execute(query)
                while rows := cur.fetchmany(batch):
                    yield rows
        else:
            with conn.cursor() as cur:
                cur.execute(query)
                while rows := cur.fetchmany(batch):
                    yield list(rows)
    finally:
        conn.close()


def source_name(url: str) -> str:
    u = urlparse(url)
    return f"{SCHEMES.get(u.scheme, u.scheme)}:{(u.path or '/').strip('/') or u.hostname}"


@dataclass
class BackfillStats:
    rows: int = 0
    examples: int = 0
    dead_letters: int = 0
    seconds: float = 0.0


def converter(url: str, query: str, label: str, tenant: str, id_column: str | None = None,
              time_column: str | None = None, weight_column: str | None = None) -> RowConverter:
    """The converter of ``query``'s rows on ``url`` (ids named by the database and the query's
    hash): what ``aimass backfill`` and a backfill task both use."""
    return RowConverter(label, tenant, source_name(url), id_column, time_column,
                        hashlib.sha1(query.encode()).hexdigest()[:10], weight_column)


def backfill(url: str, query: str, label: str, tenant: str, send, send_dead,
             id_column: str | None = None, time_column: str | None = None,
             batch: int = 5000, weight_column: str | None = None) -> BackfillStats:
    """Read, convert and hand each batch to ``send(examples)`` and its bad rows to
    ``send_dead(dead_letters)``; the Kafka side is the caller's."""
    started = time.perf_counter()
    conv = converter(url, query, label, tenant, id_column, time_column, weight_column)
    stats = BackfillStats()
    for rows in read_rows(url, query, batch):
        good, bad = conv.convert(rows, stats.rows)
        stats.rows += len(rows)
        if good:
            send(good)
        if bad:
            send_dead(bad)
        stats.examples += len(good)
        stats.dead_letters += len(bad)
    stats.seconds = time.perf_counter() - started
    return stats
