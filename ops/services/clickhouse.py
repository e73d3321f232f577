"""ClickHouse server from Debian's ``clickhouse-server`` package, with its own data directory."""

from __future__ import annotations

from streams.settings import Settings

from .debian import ensure_binary
from .proc import check_port_free, spawn, wait_until

CONFIG = "/etc/clickhouse-server/config.xml"


def start(settings: Settings) -> dict:
    check_port_free(settings.clickhouse_tcp_port, "ClickHouse (native)", "AIMASS_CLICKHOUSE_TCP_PORT")
    check_port_free(settings.clickhouse_http_port, "ClickHouse (HTTP)", "AIMASS_CLICKHOUSE_HTTP_PORT")
    check_port_free(settings.clickhouse_interserver_port, "ClickHouse (interserver)",
                    "AIMASS_CLICKHOUSE_INTERSERVER_PORT")
    binary = ensure_binary("clickhouse-server", "clickhouse-server")
    home = (settings.data_dir / "clickhouse").resolve()
    for sub in ("data", "tmp", "user_files", "format_schemas"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    argv = [
        binary, f"--config-file={CONFIG}", "--",
        f"--path={home / 'data'}/", f"--tmp_path={home / 'tmp'}/",
        f"--user_files_path={home / 'user_files'}/",
        f"--format_schema_path={home / 'format_schemas'}/",
        f"--tcp_port={settings.clickhouse_tcp_port}",
        f"--http_port={settings.clickhouse_http_port}",
        f"--interserver_http_port={settings.clickhouse_interserver_port}",
        "--listen_host=127.0.0.1", f"--logger.log={log}",
        f"--logger.errorlog={home / 'error.log'}", "--logger.console=0",
        "--logger.level=warning",
    ]
    pid = spawn(argv, home / "stdout.log", cwd=home)

    def ready() -> bool:
        from clickhouse_driver import Client

        return Client("127.0.0.1", port=settings.clickhouse_tcp_port,
                      connect_timeout=1).execute("SELECT 1") == [(1,)]

    wait_until(ready, pid, 60, "ClickHouse", home / "error.log")
    return {"pid": pid, "address": f"127.0.0.1:{settings.clickhouse_tcp_port}", "log": str(log)}
