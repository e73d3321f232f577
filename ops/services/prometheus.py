"""Prometheus from Debian's ``prometheus`` package, scraping the project's metrics endpoints."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from streams.settings import Settings

from .debian import ensure_binary
from .proc import check_port_free, spawn, wait_until

TEMPLATE = Path(__file__).resolve().parent.parent / "prometheus" / "prometheus.yml"


def _auth(settings: Settings) -> str:
    """With API keys on, the serving /metrics needs a key: a viewer key in a file."""
    if not settings.scrape_key_file:
        return ""
    return ("\n    authorization:\n      type: Bearer\n"
            f"      credentials_file: {Path(settings.scrape_key_file).resolve()}")


def render_config(settings: Settings, home: Path) -> Path:
    text = TEMPLATE.read_text()
    for key, value in {"prometheus_port": settings.prometheus_port,
                       "web_port": settings.web_port,
                       "serving_port": settings.serving_port,
                       "scrape_interval": settings.scrape_interval,
                       "rules_file": TEMPLATE.parent / "alerts.yml",
                       "serving_auth": _auth(settings)}.items():
        text = text.replace("{" + key + "}", str(value))
    path = home / "prometheus.yml"
    path.write_text(text)
    return path


def start(settings: Settings) -> dict:
    check_port_free(settings.prometheus_port, "Prometheus", "AIMASS_PROMETHEUS_PORT")
    binary = ensure_binary("prometheus", "prometheus")
    home = (settings.data_dir / "prometheus").resolve()
    (home / "tsdb").mkdir(parents=True, exist_ok=True)
    config = render_config(settings, home)
    log = home / "prometheus.log"
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            "--storage.tsdb.retention.time=7d"]
    pid = spawn(argv, log)
    url = f"http://127.0.0.1:{settings.prometheus_port}/-/ready"
    wait_until(lambda: urllib.request.urlopen(url, timeout=1).status == 200, pid, 60,
               "Prometheus", log)
    return {"pid": pid, "address": f"127.0.0.1:{settings.prometheus_port}", "log": str(log)}
