"""Throw-away PostgreSQL and MariaDB servers on loopback, from Debian's packages, for the
backfill tests and for trying ``aimass backfill`` by hand. Each lives in its own directory
and port; ``stop()`` ends it. (As root, PostgreSQL runs as the ``postgres`` user the package
creates: it refuses to run as root.)"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .debian import ensure_binary
from .proc import ServiceError, port_open, spawn, stop_pid, tail, wait_until


@dataclass
class Server:
    url: str
    pid: int
    home: Path

    def stop(self) -> None:
        stop_pid(self.pid)
        shutil.rmtree(self.home, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(
        f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    ensure_binary("pg_ctlcluster", "postgresql")
    found = next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise ServiceError(f"installed postgresql but found no {name}")
    return found


def _run(argv: list[str], what: str) -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise ServiceError(f"{what} failed: {(res.stdout + res.stderr)[-1500:]}")


def start_postgres(port: int, database: str = "aimass") -> Server:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    home = Path(tempfile.mkdtemp(prefix="aimass-pg-"))  # under /tmp: readable by postgres
    as_user: list[str] = []
    if os.geteuid() == 0:
        home.chmod(0o755)
        shutil.chown(home, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = home / "data"
    _run([*as_user, initdb, "-D", str(data), "-U", "aimass", "--auth=trust", "-E", "UTF8"],
         "initdb")
    log = home / "server.log"
    pid = spawn([*as_user, postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                 "-k", str(home)], log)
    wait_until(lambda: port_open(port), pid, 60, "PostgreSQL", log)
    url = f"postgresql://aimass@127.0.0.1:{port}/postgres"
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{database}"')
    return Server(f"postgresql://aimass@127.0.0.1:{port}/{database}", pid, home)


def start_mariadb(port: int, database: str = "aimass") -> Server:
    server = shutil.which("mariadbd") or shutil.which("mysqld") or (
        "/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else None)
    if server is None:
        ensure_binary("mariadb-install-db", "mariadb-server")
        server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if install is None:
        raise ServiceError("mariadb-install-db not found (apt-get install mariadb-server)")
    home = Path(tempfile.mkdtemp(prefix="aimass-mysql-"))
    data, log = home / "data", home / "server.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    _run([install, *user, f"--datadir={data}", "--auth-root-authentication-method=normal",
          "--skip-test-db"], "mariadb-install-db")
    pid = spawn([server, "--no-defaults", *user, f"--datadir={data}", f"--port={port}",
                 "--bind-address=127.0.0.1", f"--socket={home / 'sock'}",
                 f"--pid-file={home / 'pid'}", "--skip-grant-tables", "--skip-name-resolve",
                 f"--log-error={log}"], home / "stdout.log")
    try:
        wait_until(lambda: port_open(port), pid, 60, "MariaDB", log)
    except ServiceError as exc:
        raise ServiceError(f"{exc}\n{tail(log)}") from None
    import pymysql

    c = pymysql.connect(host="127.0.0.1", port=port, user="root")
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}`")
    c.close()
    return Server(f"mysql://root@127.0.0.1:{port}/{database}", pid, home)
