"""Shared by the benchmarks: services on free ports, a table printer, the JSON writer."""

from __future__ import annotations

import argparse
import contextlib
import platform
import socket
import tempfile
import time
from pathlib import Path

import orjson

from ops import services
from streams.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def backend(kind: str, cache_dir: Path):
    """Start ``kind`` ("kafka" or "embedded") on free ports in a temp dir; stop it after."""
    with tempfile.TemporaryDirectory(prefix=f"aimass-bench-{kind}-") as tmp:
        s = Settings(data_dir=Path(tmp), cache_dir=cache_dir, embedded=kind == "embedded",
                     kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_controller_port=free_port(),
                     clickhouse_tcp_port=free_port(), clickhouse_http_port=free_port(),
                     clickhouse_interserver_port=free_port(),
                     web_port=free_port(), clickhouse_url=None if kind == "kafka" else
                     f"chdb://{tmp}/chdb")
        services.up(s, embedded=kind == "embedded", prometheus=False, echo=lambda _: None)
        try:
            yield s
        finally:
            services.down(s, echo=lambda _: None)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", type=Path, help="write {'rows': [...]} here")
    p.add_argument("--backends", default="kafka,embedded", help="kafka,embedded")
    p.add_argument("--cache-dir", type=Path, default=Path(".aimass/cache"))
    return p


def print_table(rows: list[dict], columns: list[str]) -> None:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(x.rjust(w) if i else x.ljust(w)
                        for i, (x, w) in enumerate(zip(row, widths, strict=True))))


def write_json(path: Path | None, rows: list[dict], **meta) -> None:
    if not path:
        return
    doc = {"rows": rows, "machine": {"python": platform.python_version(),
                                     "cpu": platform.processor() or platform.machine()},
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {path}")
