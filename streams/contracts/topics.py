"""The topic catalogue: every topic is declared here once, with its partitions, key and configs.

Keys are partitioned with Kafka's murmur2 partitioner (the Java client's and aiokafka's
default); our confluent-kafka producers are configured with ``partitioner=murmur2_random`` so
that every client puts a key on the same partition, :func:`partition_for` tells which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from streams.settings import Settings

DAY_MS = 24 * 3600 * 1000
CHECKPOINT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its role name, key, partitions and Kafka configs."""

    role: str
    key: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def name(self, settings: Settings) -> str:
        return f"{settings.topic_prefix}.{self.role}"


def catalogue(settings: Settings) -> list[TopicSpec]:
    """Every topic aimass uses. Requests and feedback share a key (the request id) and a
    partition count, so a request and its clicks meet on the same partition for the join."""
    p = settings.partitions
    delete = lambda days: {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}  # noqa: E731
    return [
        TopicSpec("ad-requests", "request_id", p, delete(7),
                  "Ad requests: tenant, user/context features, candidate ads."),
        TopicSpec("feedback", "request_id", p, delete(7),
                  "Impressions and clicks, keyed by the request they answer; often late."),
        TopicSpec("training", "id", p, delete(7),
                  "Labelled training examples handed over by users (aimass train)."),
        # keyed by tenant: a tenant's examples are in one partition, a total order (a model
        # set is one sequential learner), and tenants spread over the workers that train
        TopicSpec("examples", "tenant", p, delete(7),
                  "Labelled examples in batches (one record per tenant and batch): joined "
                  "request+feedback, and training rows."),
        TopicSpec("recommendations", "request_id", p, delete(3),
                  "Ranked candidates with scores and the model version."),
        TopicSpec("model-updates", "tenant", 1,
                  {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                   "max.message.bytes": str(CHECKPOINT_MAX_BYTES),
                   "segment.ms": str(3600 * 1000)},
                  "Model snapshots, compacted: the newest per tenant/model survives."),
        TopicSpec("checkpoints", "tenant", 1,
                  {"cleanup.policy": "compact", "max.message.bytes": str(CHECKPOINT_MAX_BYTES),
                   "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000)},
                  "Trainer state per tenant (models, learned ids, metrics); compacted."),
        TopicSpec("model-specs", "tenant", 1,
                  {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                   "segment.ms": str(3600 * 1000)},
                  "Tenants' model graphs (signed, versioned), compacted: the newest per "
                  "tenant survives."),
        TopicSpec("alerts", "model", 1, delete(30),
                  "Model alerts: overfitting, degrading, rollbacks."),
        TopicSpec("tasks", "task id", 1,
                  {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                   "segment.ms": str(3600 * 1000)},
                  "Tasks (backfills, exports): the newest state of each, and cancels."),
        TopicSpec("audit", "tenant", 1, delete(365),
                  "Admin actions: model graphs applied or removed, API keys added or revoked."),
        TopicSpec("dead-letters", "source_topic", 1, delete(30),
                  "Anything malformed, anywhere, with the reason and the raw payload."),
    ]


def topic_names(settings: Settings) -> dict[str, str]:
    """Role -> full topic name."""
    return {t.role: t.name(settings) for t in catalogue(settings)}


def catalogue_json(settings: Settings) -> list[dict]:
    return [
        {"name": t.name(settings), "role": t.role, "key": t.key, "partitions": t.partitions,
         "replication": settings.replication, "configs": dict(t.configs),
         "description": t.description}
        for t in catalogue(settings)
    ]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), as a signed int32.

    >>> murmur2(b"21")
    -973932308
    >>> murmur2(b"")
    275646681
    """
    length = len(data)
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    h = (seed ^ length) & 0xFFFFFFFF
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i: 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    idx = n4 * 4
    if extra == 3:
        h ^= data[idx + 2] << 16
    if extra >= 2:
        h ^= data[idx + 1] << 8
    if extra >= 1:
        h ^= data[idx]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-empty key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@njit(cache=True)
def _murmur2_many(buf, starts, out):
    """Kafka's murmur2 of each key ``buf[starts[i]:starts[i + 1]]``, positive part."""
    m = np.uint64(0x5BD1E995)
    f = np.uint64(0xFFFFFFFF)
    for i in range(starts.shape[0] - 1):
        s, e = starts[i], starts[i + 1]
        length = e - s
        h = (np.uint64(0x9747B28C) ^ np.uint64(length)) & f
        n4 = length // 4
        for j in range(n4):
            b = s + 4 * j
            k = (np.uint64(buf[b]) | (np.uint64(buf[b + 1]) << np.uint64(8))
                 | (np.uint64(buf[b + 2]) << np.uint64(16))
                 | (np.uint64(buf[b + 3]) << np.uint64(24)))
            k = (k * m) & f
            k ^= k >> np.uint64(24)
            k = (k * m) & f
            h = (h * m) & f
            h ^= k
        extra = length % 4
        t = s + n4 * 4
        if extra == 3:
            h ^= np.uint64(buf[t + 2]) << np.uint64(16)
        if extra >= 2:
            h ^= np.uint64(buf[t + 1]) << np.uint64(8)
        if extra >= 1:
            h ^= np.uint64(buf[t])
            h = (h * m) & f
        h ^= h >> np.uint64(13)
        h = (h * m) & f
        h ^= h >> np.uint64(15)
        out[i] = h & np.uint64(0x7FFFFFFF)


def partitions_for(keys: list[bytes], partitions: int) -> np.ndarray:
    """:func:`partition_for` of many keys in one compiled pass.

    >>> partitions_for([b"21", b"", b"request-7"], 4).tolist() == [
    ...     partition_for(k, 4) for k in (b"21", b"", b"request-7")]
    True
    """
    starts = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum([len(k) for k in keys], out=starts[1:])
    buf = np.frombuffer(b"".join(keys), dtype=np.uint8) if keys else np.zeros(0, np.uint8)
    out = np.empty(len(keys), dtype=np.uint64)
    _murmur2_many(buf, starts, out)
    return out.astype(np.int64) % partitions


def ensure_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create every declared topic that is missing; idempotent. Returns name -> 'created'|'exists'.

    Existing topics are checked: a partition count that differs from the catalogue is an error
    (Kafka cannot shrink partitions, and a silent mismatch would break the request/feedback join).
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = admin.list_topics(timeout=timeout).topics
    result: dict[str, str] = {}
    new: list[NewTopic] = []
    for spec in catalogue(settings):
        name = spec.name(settings)
        if name in existing:
            have = len(existing[name].partitions)
            if have != spec.partitions:
                raise RuntimeError(
                    f"topic {name} has {have} partitions, the catalogue declares "
                    f"{spec.partitions}: delete it or set AIMASS_PARTITIONS={have}")
            result[name] = "exists"
        else:
            new.append(NewTopic(name, num_partitions=spec.partitions,
                                replication_factor=settings.replication, config=spec.configs))
    if new:
        for name, fut in admin.create_topics(new, request_timeout=timeout).items():
            try:
                fut.result(timeout)
                result[name] = "created"
            except Exception as exc:  # TOPIC_ALREADY_EXISTS from a concurrent creator is fine
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    result[name] = "exists"
                else:
                    raise RuntimeError(f"could not create topic {name}: {exc}") from exc
        _wait_for_leaders(admin, [t.topic for t in new], timeout)
    return result


def _wait_for_leaders(admin, names: list[str], timeout: float) -> None:
    """Block until every new topic shows in the metadata with a leader for each partition."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=timeout).topics
        if all(n in md and md[n].partitions and not md[n].error
               and all(p.leader >= 0 for p in md[n].partitions.values()) for n in names):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topics {names} were created but have no leaders after {timeout}s")
