"""Fixtures: the services, started once per test session on free loopback ports.

``backend`` is parametrised: every test that takes it runs against real Apache Kafka + ClickHouse
server, and again against the embedded defaults (Tansu + chdb). Set ``AIMASS_TEST_BACKENDS`` to
``kafka`` or ``embedded`` to run one of them only.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

# Imported now, not by hypothesis's pytest plugin at the terminal summary: on CPython 3.11.7
# that late import (rewritten by pytest, after the numba/threaded tests) can fail with
# "SystemError: AST constructor recursion depth mismatch" (a CPython bug fixed in 3.11.8).
import hypothesis.internal.observability  # noqa: F401
import pytest

from ops import services
from streams.contracts.topics import ensure_topics
from streams.settings import Settings

REPO = Path(__file__).resolve().parent.parent
BACKENDS = os.environ.get("AIMASS_TEST_BACKENDS", "kafka,embedded").split(",")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(data_dir: Path, embedded: bool) -> Settings:
    return Settings(
        data_dir=data_dir,
        cache_dir=REPO / ".aimass" / "cache",
        embedded=embedded,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        clickhouse_tcp_port=free_port(),
        clickhouse_http_port=free_port(),
        clickhouse_interserver_port=free_port(),
        prometheus_port=free_port(),
        web_port=free_port(),
    )


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aimass")


@pytest.fixture(scope="session")
def movielens_dir(data_root) -> Path:
    from streams.sources import movielens

    return movielens.fetch(REPO / ".aimass")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, data_root) -> Settings:
    """Running services for one backend; torn down at the end of the session."""
    embedded = request.param == "embedded"
    s = make_settings(data_root / request.param, embedded)
    services.up(s, embedded=embedded, prometheus=False, echo=lambda _: None)
    request.addfinalizer(lambda: services.down(s, echo=lambda _: None))
    ensure_topics(s)
    return s


@pytest.fixture
def fresh(backend, tmp_path) -> Settings:
    """The backend with its own topic prefix, consumer group and ClickHouse database/path, so
    tests do not see each other's events or rows."""
    tag = uuid.uuid4().hex[:8]
    update = {"topic_prefix": f"t{tag}", "app_id": f"g{tag}", "web_port": free_port(),
              "serving_port": free_port()}
    if backend.embedded:
        update["clickhouse_url"] = f"chdb://{tmp_path / 'chdb'}"
    else:
        update["clickhouse_url"] = f"clickhouse://127.0.0.1:{backend.clickhouse_tcp_port}/db{tag}"
    s = backend.model_copy(update=update)
    ensure_topics(s)
    return s
