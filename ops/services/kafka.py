"""Apache Kafka 4.x as a single-node KRaft broker on loopback, from jars Maven resolves.

The jars go to ``<data_dir>/cache/kafka-<version>/`` (git ignores the data directory); storage is
formatted once, on first start, under ``<data_dir>/kafka/``, so a restart keeps the log.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

from streams.settings import Settings

from .maven import resolve_jars
from .proc import ServiceError, check_port_free, spawn, tail, wait_until

POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
"""


def java_major() -> int:
    java = shutil.which("java")
    if not java:
        raise ServiceError("Java is not installed: Kafka 4 needs Java 17 or newer "
                           "(Debian: apt-get install -y openjdk-17-jre-headless).")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    return int(m.group(1)) if m else 0


def ensure_jars(settings: Settings) -> Path:
    """Resolve the broker's jars with Maven (once) and return the folder holding them."""
    jars = settings.cache_dir / f"kafka-{settings.kafka_version}"
    marker = f"kafka_2.13-{settings.kafka_version}.jar"
    if not (jars / marker).exists() and java_major() < 17:
        raise ServiceError("Kafka 4 needs Java 17 or newer; `java -version` reports an older one.")
    return resolve_jars(POM, jars, marker, f"org.apache.kafka:kafka_2.13:{settings.kafka_version}",
                        {"kafka.version": settings.kafka_version})


def write_config(settings: Settings, home: Path) -> Path:
    host, port, cport = settings.kafka_host, settings.kafka_port, settings.kafka_controller_port
    props = home / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={host}:{cport}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={(home / 'logs').resolve()}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.check.interval.ms=60000",
        "log.cleaner.backoff.ms=5000",
        "auto.create.topics.enable=false",
        "",
    ]))
    (home / "log4j2.properties").write_text(LOG4J2.format(log=(home / "server.log").resolve()))
    return props


def start(settings: Settings) -> dict:
    """Start the broker (formatting storage on first start) and wait until it answers."""
    check_port_free(settings.kafka_port, "Kafka", "AIMASS_KAFKA_BOOTSTRAP")
    check_port_free(settings.kafka_controller_port, "the Kafka controller",
                    "AIMASS_KAFKA_CONTROLLER_PORT")
    jars = ensure_jars(settings)
    home = settings.data_dir / "kafka"
    home.mkdir(parents=True, exist_ok=True)
    props = write_config(settings, home)
    java = shutil.which("java")
    cp = f"{jars.resolve()}/*"
    jvm = ["-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={(home / 'log4j2.properties').resolve()}"]
    if not (home / "logs" / "meta.properties").exists():
        res = subprocess.run(
            [java, *jvm, "-cp", cp, "kafka.tools.StorageTool", "format", "--config", str(props),
             "--cluster-id", uuid.uuid4().hex[:22], "--standalone", "--ignore-formatted"],
            capture_output=True, text=True)
        if res.returncode != 0:
            raise ServiceError(f"formatting Kafka storage failed:\n{res.stdout}{res.stderr}")
    log = home / "stdout.log"
    pid = spawn([java, *jvm, "-cp", cp, "kafka.Kafka", str(props.resolve())], log)
    wait_until(lambda: _answers(settings), pid, 90, "Kafka", home / "server.log")
    return {"pid": pid, "address": settings.kafka_bootstrap, "log": str(home / "server.log")}


def _answers(settings: Settings) -> bool:
    from confluent_kafka.admin import AdminClient

    from .proc import port_open

    if not port_open(settings.kafka_port, settings.kafka_host):
        return False
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "socket.timeout.ms": 2000})
    md = admin.list_topics(timeout=2)
    return bool(md.brokers)


__all__ = ["start", "ensure_jars", "tail"]
