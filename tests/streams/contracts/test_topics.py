import orjson

from streams.contracts.topics import catalogue, catalogue_json, murmur2, partition_for
from streams.settings import Settings


def test_murmur2_matches_kafka_java_vectors():
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             bytes([ord("a"), ord("b"), ord("c")]): 479470107}
    for data, want in cases.items():
        assert murmur2(data) == want, data


def test_partition_for_is_in_range_and_spreads():
    parts = [partition_for(f"req-{i}".encode(), 4) for i in range(1000)]
    assert set(parts) == {0, 1, 2, 3}
    assert min(parts.count(p) for p in range(4)) > 200


def test_catalogue_declares_every_role_once():
    s = Settings(topic_prefix="x")
    roles = [t.role for t in catalogue(s)]
    assert roles == ["ad-requests", "feedback", "training", "examples", "recommendations",
                     "model-updates", "checkpoints", "model-specs", "alerts", "tasks", "audit",
                     "dead-letters"]
    by_role = {t.role: t for t in catalogue(s)}
    assert by_role["model-updates"].configs["cleanup.policy"] == "compact"
    assert by_role["ad-requests"].partitions == by_role["feedback"].partitions  # co-partitioned
    assert by_role["ad-requests"].key == by_role["feedback"].key == "request_id"
    names = [t["name"] for t in orjson.loads(orjson.dumps(catalogue_json(s)))]
    assert names[0] == "x.ad-requests"
