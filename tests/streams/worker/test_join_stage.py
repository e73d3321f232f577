"""The join stage without Kafka: each tenant's clock apart, acknowledgements in offset order
after the earlier stages settle, the merge of unevenly read partitions, events of a former
generation (idle inputs: test_join_idle_flush.py)."""

from __future__ import annotations

import asyncio
import time

from streams.contracts.example_batches import decode_examples
from streams.settings import Settings
from tests.streams.worker.fakes import FakeEvent, FakeRuntime, two_windows


def test_the_join_keeps_each_tenants_clock_apart(tmp_path):
    """Two tenants share a partition: one replays 1997, the other is live. The live one's
    events must not make the replayed tenant's requests late, nor close its windows."""
    from streams.contracts.events import AdRequest, Candidate, Feedback
    from streams.worker.join import JoinStage

    s = Settings(data_dir=tmp_path, join_window=60.0)
    rt = FakeRuntime(s)
    produced: list = []

    rt.send = lambda role, messages, **kw: produced.extend(messages)
    stage = JoinStage(rt)
    acked: list[FakeEvent] = []
    live = 1.8e9
    recs = [AdRequest("live-1", live, "live", {"user_id": "u"}, [Candidate("a")]),
            AdRequest("old-1", 8.7e8, "old", {"user_id": "u"}, [Candidate("a")]),
            Feedback("old-1-a-imp", 8.7e8 + 1, "old", "old-1", "a", "impression"),
            Feedback("old-1-a-click", 8.7e8 + 2, "old", "old-1", "a", "click"),
            Feedback("live-1-a-imp", live + 1, "live", "live-1", "a", "impression"),
            AdRequest("old-2", 8.7e8 + 100, "old", {"user_id": "u"}, [Candidate("a")]),
            Feedback("old-2-a-imp", 8.7e8 + 101, "old", "old-2", "a", "impression")]
    events = [FakeEvent(i, b"", acked) for i in range(len(recs))]
    valid = {"ad-requests": [(e, r, e.message.partition) for e, r in zip(events, recs,
                                                                          strict=True)
                             if isinstance(r, AdRequest)],
             "feedback": [(e, r, e.message.partition) for e, r in zip(events, recs, strict=True)
                          if isinstance(r, Feedback)]}

    asyncio.run(stage.handle(valid, events))
    exs = [e for _, v in produced for e in decode_examples(v)[0]]
    assert [(e.id, e.label, e.tenant) for e in exs] == [("old-1/a", 1, "old")]  # old-2 closed it
    assert sum(j.stats["late_requests"] + j.stats["late_feedback"]
               for j in stage.joiners.values()) == 0
    assert {k[1] for k in stage.joiners} == {"live", "old"}
    # the agent's own acknowledgements; the join's come in offset order as windows close
    for ev in events:
        ev.ack()
    assert [e.message.offset for e in acked] == []  # live-1 (offset 0) is still open


def test_the_join_acknowledges_only_after_the_earlier_stages_settle(tmp_path):
    """Ingest writes rows behind and score sends without waiting: the join acknowledges an
    event only once ``before_ack`` (rows written, sends confirmed) is done, and in offset order
    even when the idle flush releases at the same time."""
    from streams.worker.join import JoinStage

    s = Settings(data_dir=tmp_path, join_window=10.0, join_idle_flush=0.0)
    rt = FakeRuntime(s)
    settled: list[float] = []
    acked: list[FakeEvent] = []

    async def before_ack():
        await asyncio.sleep(0.05)  # the rows are still being written
        settled.append(time.monotonic())

    rt.send = lambda role, messages, **kw: None
    stage = JoinStage(rt, before_ack=before_ack)
    events, valid = two_windows(acked)
    acked_at: list[tuple[int, float]] = []
    for ev in events:
        ev.ack = (lambda e: lambda: acked_at.append((e.message.offset, time.monotonic())))(ev)

    async def caught_up(role=None):
        return True

    async def run():
        await stage.handle(valid, events)  # r2 closes r1's window: offsets 0, 1 are done
        await stage.released()
        assert [o for o, _ in acked_at] == [0, 1] and acked_at[0][1] >= settled[0]
        await asyncio.gather(stage.flush_idle(caught_up), stage.flush_idle(caught_up))
        await stage.released()

    asyncio.run(run())
    assert [o for o, _ in acked_at] == [0, 1, 2, 3]  # each once, in order
    assert all(any(s <= t for s in settled) for _, t in acked_at)


def _skewed_join(tmp_path, merge: bool, n: int = 3000, chunk: int = 1500):
    """MovieLens requests and feedback on 4 partitions (keyed as Kafka does), read one
    partition's chunk at a time, as a consumer catching up reads them."""
    from streams.contracts.events import AdRequest
    from streams.contracts.topics import partition_for
    from streams.sources import movielens
    from streams.worker.join import JoinStage
    from tests.conftest import REPO

    s = Settings(data_dir=tmp_path, join_merge=merge, join_idle_flush=0.0, batch_size=chunk)
    rt = FakeRuntime(s)
    produced: list[bytes] = []

    rt.send = lambda role, messages, **kw: produced.extend(v for _, v in messages)
    stage = JoinStage(rt)
    parts: dict[int, list] = {p: [] for p in range(4)}
    ml = movielens.load(movielens.fetch(REPO / ".aimass"))
    for ev in movielens.ad_stream(ml, n):
        p = partition_for(ev.request.id.encode(), 4)
        parts[p] += [ev.request, ev.impression] + ([ev.click] if ev.click else [])
    acked: list[FakeEvent] = []
    offset = {p: 0 for p in parts}

    async def caught_up(role=None):
        return True

    async def run():
        while any(offset[p] < len(parts[p]) for p in parts):
            for p in parts:
                stage.partition_lag = {q: len(parts[q]) - offset[q] for q in parts}
                recs = parts[p][offset[p]:offset[p] + chunk]
                events = [FakeEvent(offset[p] + i, b"", acked) for i in range(len(recs))]
                for ev in events:
                    ev.message.partition, ev.message.tp = p, ("in", p)
                offset[p] += len(recs)
                pairs = list(zip(events, recs, strict=True))
                valid = {"ad-requests": [(e, r, p) for e, r in pairs
                                         if isinstance(r, AdRequest)],
                         "feedback": [(e, r, p) for e, r in pairs
                                      if not isinstance(r, AdRequest)]}
                await stage.handle(valid, events)
                for ev in events:
                    ev.ack()  # the agent's own reference
        stage.partition_lag = {q: 0 for q in parts}
        await stage.flush_idle(caught_up)
        await stage.released()

    asyncio.run(run())
    exs = [e for v in produced for e in decode_examples(v)[0]]
    total = sum(len(v) for v in parts.values())
    return exs, acked, total


def test_the_join_merges_partitions_read_unevenly_into_request_time_order(tmp_path):
    """A consumer catching up reads one partition thousands of events ahead of another: the
    merged examples still come in request-time order, each once, and every event is
    acknowledged once its examples are out."""
    from ops.bench.movielens_stream import click_stream
    from tests.conftest import REPO

    exs, acked, total = _skewed_join(tmp_path, merge=True)
    times = [e.event_time for e in exs]
    assert times == sorted(times)
    assert sorted(e.id for e in exs) == sorted(e.id for e in click_stream(REPO / ".aimass", 3000))
    assert len(acked) == total

    unmerged, _, _ = _skewed_join(tmp_path, merge=False)  # what the merge is for
    times = [e.event_time for e in unmerged]
    assert times != sorted(times)


def test_the_join_holds_no_event_of_a_former_generation(tmp_path):
    """Requests and feedback fetched before a rebalance reach the join after it: they make no
    example and are never acknowledged (their partition is read again)."""
    from streams.contracts.events import AdRequest, Candidate, Feedback
    from streams.worker.join import JoinStage

    rt = FakeRuntime(Settings(data_dir=tmp_path, join_window=10.0, join_idle_flush=0.0))
    sent: list = []
    rt.send = lambda role, messages, **kw: sent.append(messages)
    stage = JoinStage(rt)
    recs = [AdRequest("r1", 100.0, "t", {"user_id": "u"}, [Candidate("a")]),
            Feedback("r1-i", 101.0, "t", "r1", "a", "impression"),
            AdRequest("r2", 200.0, "t", {"user_id": "u"}, [Candidate("a")])]
    acked: list[FakeEvent] = []
    events = [FakeEvent(i, b"", acked) for i in range(len(recs))]
    valid = {"ad-requests": [(events[0], recs[0], 0), (events[2], recs[2], 0)],
             "feedback": [(events[1], recs[1], 0)]}
    rt.group_generation = 2  # fetched in generation 1

    async def run():
        await stage.handle(valid, events)
        await stage.released()

    asyncio.run(run())
    assert not sent and not acked and not stage.queue and not stage.joiners
