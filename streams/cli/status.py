"""`aimass status`: the cluster at a glance, for people (a table) and scripts (``--json``).

- the worker group: its state and members, each with the partitions it reads;
- lag per partition of every input topic: the end offset against the group's commit;
- the trainer of each tenant: the member that reads the tenant's examples partition (examples
  are keyed by tenant), with the version and examples of its last checkpoint, from the
  workers' ``/metrics`` (``--worker URL``, default this machine's worker);
- each serving replica (``--replica URL``, default this machine's) and the model version it
  serves per tenant.

:func:`cluster_view` gathers it (Kafka's admin API, HTTP), :func:`render` formats it; neither
needs the other.
"""

from __future__ import annotations

import urllib.request

import orjson
from prometheus_client.parser import text_string_to_metric_families

from streams.contracts.topics import partition_for, topic_names
from streams.settings import Settings

INPUTS = ("ad-requests", "feedback", "training", "examples")


def group_view(settings: Settings, timeout: float = 10.0) -> dict:
    """The worker group's state, members (their partitions) and per-partition lag."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group = settings.app_id
    desc = admin.describe_consumer_groups([group], request_timeout=timeout)[group].result()
    members = [{"member": m.member_id, "client": m.client_id, "host": m.host,
                "partitions": sorted(f"{tp.topic}[{tp.partition}]"
                                     for tp in (m.assignment.topic_partitions
                                                if m.assignment else []))}
               for m in desc.members]
    names = topic_names(settings)
    tps = [TopicPartition(names[role], p) for role in INPUTS for p in range(settings.partitions)]
    committed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, tps)], request_timeout=timeout)[group].result()
    done = {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions}
    reader = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                       "group.id": "aimass-status", "enable.auto.commit": False})
    owner = {p: m["client"] for m in members for p in m["partitions"]}
    lag = []
    try:
        for tp in tps:
            low, high = reader.get_watermark_offsets(tp, timeout=timeout)
            at = done.get((tp.topic, tp.partition), -1)
            read = at if at >= 0 else low  # no commit yet: from the start
            name = f"{tp.topic}[{tp.partition}]"
            lag.append({"topic": tp.topic, "partition": tp.partition, "end": high,
                        "committed": at if at >= 0 else None, "lag": max(high - read, 0),
                        "reader": owner.get(name)})
    finally:
        reader.close()
    return {"group": group, "state": str(desc.state).rsplit(".", 1)[-1], "members": members,
            "lag": lag}


def _scrape(url: str, timeout: float = 3.0) -> dict | None:
    """A worker's per-tenant gauges (checkpoint version and examples), or None if it is
    not answering."""
    try:
        text = urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout).read()
    except OSError:
        return None
    tenants: dict[str, dict] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            if s.name in ("aimass_model_version", "aimass_checkpoint_examples") and \
                    "tenant" in s.labels:
                key = "version" if s.name == "aimass_model_version" else "examples"
                tenants.setdefault(s.labels["tenant"], {})[key] = int(s.value)
    return tenants


def _models(url: str, timeout: float = 3.0) -> dict | None:
    try:
        doc = orjson.loads(urllib.request.urlopen(url.rstrip("/") + "/models",
                                                  timeout=timeout).read())
    except (OSError, orjson.JSONDecodeError):
        return None
    return {t: m.get("version") for t, m in doc.get("tenants", {}).items()}


def cluster_view(settings: Settings, workers: list[str], replicas: list[str]) -> dict:
    view = group_and_trainers(settings, workers)
    view["replicas"] = [{"url": u, "answering": (m := _models(u)) is not None,
                         "versions": m or {}} for u in replicas]
    return view


def group_and_trainers(settings: Settings, workers: list[str]) -> dict:
    """The group view, with the workers (answering or not) and each tenant's trainer."""
    view = group_view(settings)
    examples = topic_names(settings)["examples"]
    owner = {p: m["client"] for m in view["members"] for p in m["partitions"]}
    scraped = {url: _scrape(url) for url in workers}
    trainers = {}
    for tenants in scraped.values():
        for tenant, figures in (tenants or {}).items():
            p = partition_for(tenant.encode(), settings.partitions)
            t = trainers.setdefault(tenant, {"tenant": tenant, "partition": f"{examples}[{p}]",
                                             "trainer": owner.get(f"{examples}[{p}]"),
                                             "version": 0, "examples": 0})
            if figures.get("version", 0) >= t["version"]:  # the newest checkpoint seen
                t.update(figures)
    view["workers"] = [{"url": u, "answering": t is not None} for u, t in scraped.items()]
    view["tenants"] = sorted(trainers.values(), key=lambda t: t["tenant"])
    return view


def render(view: dict) -> str:
    out = [f"worker group {view['group']}: {view['state']}, {len(view['members'])} member(s)"]
    for m in view["members"]:
        out.append(f"  {m['client']} ({m['host']}): {len(m['partitions'])} partitions")
    out.append("lag (end - committed):")
    for r in view["lag"]:
        out.append(f"  {r['topic']}[{r['partition']}]: {r['lag']:,} of {r['end']:,}"
                   f"  read by {r['reader'] or 'nobody'}")
    out.append("tenants (trainer, last checkpoint):")
    for t in view.get("tenants", []):
        out.append(f"  {t['tenant']}: {t['trainer'] or 'no member'} on {t['partition']}, "
                   f"version {t['version']}, {t['examples']:,} examples")
    for w in view.get("workers", []):
        if not w["answering"]:
            out.append(f"  (worker {w['url']} is not answering)")
    out.append("serving replicas:")
    for r in view.get("replicas", []):
        served = ", ".join(f"{t} v{v}" for t, v in sorted(r["versions"].items())) or "no model"
        out.append(f"  {r['url']}: " + (served if r["answering"] else "not answering"))
    return "\n".join(out)
