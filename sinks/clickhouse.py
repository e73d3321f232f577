"""One ClickHouse client interface over the server (clickhouse-driver) and chdb (in-process).

>>> import tempfile
>>> ch = connect(f"chdb://{tempfile.mkdtemp()}")
>>> ch.execute("CREATE TABLE t (a UInt8, b String) ENGINE = MergeTree() ORDER BY a")
>>> ch.insert("t", ["a", "b"], [(1, "x"), (2, "y")])
2
>>> ch.query("SELECT sum(a), count() FROM t")
[(3, 2)]
>>> ch.close()
"""

from __future__ import annotations

import threading
from typing import Protocol
from urllib.parse import urlparse

import orjson


class ClickHouse(Protocol):
    database: str

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> list[tuple]: ...

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> int: ...

    def close(self) -> None: ...


class ServerClient:
    """ClickHouse server over the native protocol (clickhouse-driver)."""

    def __init__(self, host: str, port: int, database: str, user: str = "default",
                 password: str = ""):
        from clickhouse_driver import Client

        self.database = database
        self._admin = Client(host, port=port, user=user, password=password, connect_timeout=5)
        self._admin.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        self._client = Client(host, port=port, database=database, user=user, password=password,
                              connect_timeout=5, settings={"insert_block_size": 100_000})
        self._lock = threading.Lock()

    def execute(self, sql: str) -> None:
        with self._lock:
            self._client.execute(sql)

    def query(self, sql: str) -> list[tuple]:
        with self._lock:
            return [tuple(r) for r in self._client.execute(sql)]

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> int:
        if not rows:
            return 0
        with self._lock:
            return self._client.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", rows)

    def close(self) -> None:
        self._client.disconnect()
        self._admin.disconnect()


class ChdbClient:
    """ClickHouse in-process (chdb), data kept on disk under ``path``.

    chdb runs one embedded server per process, on one path, and a path cannot be opened by two
    processes. Clients of the same path share the session; it closes with its last client.
    """

    _open: dict[str, list] = {}  # path -> [session, number of open clients]

    def __init__(self, path: str, database: str = "aimass"):
        import chdb.session

        self.database = database
        self.path = path
        self._lock = threading.Lock()
        if path not in self._open:
            if self._open:
                raise RuntimeError(f"chdb is already open at {next(iter(self._open))} in this "
                                   f"process; close that client before opening {path}")
            self._open[path] = [chdb.session.Session(path), 0]
        self._open[path][1] += 1
        self._s = self._open[path][0]
        self._s.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        self._s.query(f"USE {database}")

    def execute(self, sql: str) -> None:
        with self._lock:
            self._s.query(sql)

    def query(self, sql: str) -> list[tuple]:
        with self._lock:
            res = self._s.query(sql, "JSONCompact")
        raw = res.bytes()
        return [tuple(r) for r in orjson.loads(raw)["data"]] if raw else []

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> int:
        if not rows:
            return 0
        body = b"\n".join(orjson.dumps(r) for r in rows).decode()
        with self._lock:
            self._s.query(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONCompactEachRow\n"
                          + body)
        return len(rows)

    def close(self) -> None:
        entry = self._open.get(self.path)
        if entry is None or self._s is None:
            return
        self._s = None
        entry[1] -= 1
        if entry[1] == 0:
            entry[0].close()
            del self._open[self.path]


def connect(dsn: str) -> ClickHouse:
    """``clickhouse://[user[:password]@]host:port/database`` or ``chdb://PATH``."""
    u = urlparse(dsn)
    if u.scheme == "chdb":
        return ChdbClient(u.netloc + u.path)
    if u.scheme == "clickhouse":
        return ServerClient(u.hostname or "127.0.0.1", u.port or 9000,
                            (u.path or "/aimass").strip("/") or "aimass",
                            u.username or "default", u.password or "")
    raise ValueError(f"unsupported ClickHouse URL {dsn!r}: use clickhouse://host:port/db or "
                     "chdb://PATH")
