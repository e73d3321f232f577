"""The join stage's idle flush without Kafka: a pause of one input, a backlog read to its end
(end offsets that stood still, records written long ago), the releases in flight waited for
first, and the quiet that counts only from when acknowledgements resumed after an outage."""

from __future__ import annotations

import asyncio
import time

from streams.contracts.example_batches import decode_examples
from streams.settings import Settings
from tests.streams.worker.fakes import FakeEvent, FakeRuntime, two_windows


async def caught_up(role=None):
    """Every partition read to its end."""
    return True


def recording_stage(tmp_path, before_ack=None, **settings):
    """A join stage on a fake runtime and the examples records it sends."""
    from streams.worker.join import JoinStage

    rt = FakeRuntime(Settings(data_dir=tmp_path, **settings))
    sent: list = []
    rt.send = lambda role, messages, **kw: sent.extend(v for _, v in messages)
    return JoinStage(rt, before_ack=before_ack), sent


def test_a_pause_of_one_input_closes_no_window_a_replay_ran_past(tmp_path):
    """A replay's requests come first (their event time runs hours ahead in a second) while
    feedback is still quiet: the quiet input's clock runs with the wall clock, so the pause
    closes no window, and the clicks that come after it all join."""
    from streams.contracts.events import AdRequest
    from streams.sources import movielens
    from tests.conftest import REPO

    stage, produced = recording_stage(tmp_path, join_idle_flush=5.0)
    rt, s = stage.rt, stage.rt.settings
    stream = list(movielens.ad_stream(movielens.load(movielens.fetch(REPO / ".aimass")), 300))
    assert stream[-1].request.event_time - stream[0].request.event_time > 10 * s.join_window
    reqs = [ev.request for ev in stream]
    fbs = [f for ev in stream for f in (ev.impression, ev.click) if f is not None]
    acked: list[FakeEvent] = []

    def batch(records, first):
        events = [FakeEvent(first + i, b"", acked) for i in range(len(records))]
        for ev in events:
            ev.message.tp = ("in", 0)
        role = "ad-requests" if isinstance(records[0], AdRequest) else "feedback"
        other = "feedback" if role == "ad-requests" else "ad-requests"
        return {role: [(e, r, 0) for e, r in zip(events, records, strict=True)], other: []}, events

    async def run():
        stage.started -= 60.0  # feedback has been quiet for a minute
        valid, events = batch(reqs, 0)
        await stage.handle(valid, events)
        await stage.flush_idle(caught_up)  # requests live, feedback idle: nothing closes
        assert sum(len(j) for j in stage.joiners.values()) == len(reqs)
        valid, events = batch(fbs, len(reqs))
        await stage.handle(valid, events)
        for role in stage.last_by_role:
            stage.last_by_role[role] -= 60.0  # the replay is over
        await stage.flush_idle(caught_up)

    asyncio.run(run())
    exs = [e for v in produced for e in decode_examples(v)[0]]
    assert sum(e.label for e in exs) == sum(1 for ev in stream if ev.click)
    assert len(exs) == len(reqs)
    assert not rt.registry.get_sample_value("aimass_join_dropped_total",
                                           {"reason": "late_feedback"})


def test_after_an_outage_the_inputs_count_as_quiet_only_from_when_acknowledgements_resume(
        tmp_path):
    """A release that waited on ``before_ack`` longer than ``stalled`` (the broker away: this
    worker's own sends could not go) means the inputs were unreachable, not quiet: though the
    end offsets have stood still for 30 s, r2's window stays open (the producers have not
    sent again yet). Where acknowledgements go through at once, the same flush closes it."""
    def run(acknowledging_takes: float) -> list[str]:
        async def before_ack():
            await asyncio.sleep(acknowledging_takes)

        stage, sent = recording_stage(tmp_path, before_ack, join_window=10.0,
                                      join_idle_flush=5.0)
        stage.stalled = 0.05
        events, valid = two_windows([])

        async def go():
            await stage.handle(valid, events)  # r2 closes r1's window: its release waits
            for ev in events:
                ev.ack()
            for role in ("ad-requests", "feedback"):
                stage.note_ends(role, {0: 4})
                stage.last_produced[role] = time.monotonic() - 30.0
            await stage.flush_idle(caught_up)

        asyncio.run(go())
        return [e.id for v in sent for e in decode_examples(v)[0]]

    assert run(0.2) == ["r1/a"]
    assert run(0.0) == ["r1/a", "r2/a"]


def test_the_idle_flush_decides_once_the_releases_in_flight_are_done(tmp_path):
    """At the end of a backlog the idle flush's timer finds the agent's releases in flight:
    it waits for them, then judges the inputs' quiet as it is then (0.3 s here, past the
    0.2 s idle flush), not as it was when it began waiting (nothing read for 0 s), so the
    last window closes in the same call, not a tick later."""
    async def before_ack():
        await asyncio.sleep(0.3)  # the last rows going into ClickHouse

    stage, sent = recording_stage(tmp_path, before_ack, join_window=10.0, join_idle_flush=0.2)
    events, valid = two_windows([])

    async def go():
        await stage.handle(valid, events)  # read just now; r1's release in flight
        await stage.flush_idle(caught_up)

    asyncio.run(go())
    assert [e.id for v in sent for e in decode_examples(v)[0]] == ["r1/a", "r2/a"]


def one_request_worker(tmp_path, written_at: float | None = None):
    """A join stage (a 60 s window, a 5 s idle flush) and a request with its impression, the
    records written to Kafka at ``written_at``. Returns the stage, its ``valid``, the
    events, what it sends and what it acknowledges."""
    from streams.contracts.events import AdRequest, Candidate, Feedback

    stage, sent = recording_stage(tmp_path, join_window=60.0, join_idle_flush=5.0)
    recs = [AdRequest("r1", 100.0, "t", {"user_id": "u"}, [Candidate("a")]),
            Feedback("r1-i", 101.0, "t", "r1", "a", "impression")]
    acked: list[FakeEvent] = []
    events = [FakeEvent(i, b"", acked) for i in range(len(recs))]
    for ev in events:
        ev.message.timestamp = written_at
    valid = {"ad-requests": [(events[0], recs[0], 0)], "feedback": [(events[1], recs[1], 0)]}
    return stage, valid, events, sent, acked


def test_a_worker_catching_up_flushes_once_read_to_ends_that_stopped_moving(tmp_path):
    """A backlog read after its producers stopped: the last event was read just now, but the
    end offsets have stood still for longer than ``join_idle_flush``, so once the worker has
    read to them its windows close (it does not wait ``join_idle_flush`` more). While the ends
    still move, the same read-up-to-them worker keeps its windows open."""
    def worker():
        return one_request_worker(tmp_path)

    async def run(stage, valid, events, ends_moved_at):
        for role in ("ad-requests", "feedback"):
            stage.note_ends(role, {0: 7})
            stage.last_produced[role] = ends_moved_at
        await stage.handle(valid, events)  # read just now
        for ev in events:
            ev.ack()
        await stage.flush_idle(caught_up)
        await stage.released()

    stage, valid, events, sent, acked = worker()
    asyncio.run(run(stage, valid, events, time.monotonic() - 30.0))
    assert [e.id for v in sent for e in decode_examples(v)[0]] == ["r1/a"]
    assert len(acked) == 2
    stage.note_ends("ad-requests", {0: 7})  # unchanged: when they moved stays as it was
    assert time.monotonic() - stage.last_produced["ad-requests"] > 25.0
    stage.note_ends("ad-requests", {0: 7, 1: None})  # an end not known yet: no news
    assert time.monotonic() - stage.last_produced["ad-requests"] > 25.0
    stage.note_ends("ad-requests", {0: 8})  # moved: quiet from now
    assert time.monotonic() - stage.last_produced["ad-requests"] < 5.0

    stage, valid, events, sent, acked = worker()
    asyncio.run(run(stage, valid, events, time.monotonic()))  # producers still writing
    assert not sent and not acked


def test_a_backlog_whose_records_were_written_long_ago_flushes_once_read_to_the_end(tmp_path):
    """A worker that began reading a minute ago reads the last of a backlog just now, and
    learns only now where the ends are (its consumer had not fetched those partitions since
    the producers stopped): the records' Kafka timestamps say nothing was written for longer
    than ``join_idle_flush``, so its windows close. Records written just now keep them open,
    and so do records stamped with last year's times read for the first time just now (a
    producer replaying history with its own timestamps says nothing of when it wrote)."""
    def run(written_at: float, reading_since: float | None):
        stage, valid, events, sent, _ = one_request_worker(tmp_path, written_at)
        if reading_since is not None:  # it read other events of both inputs back then
            stage.first_read = dict.fromkeys(("ad-requests", "feedback"), reading_since)

        async def go():
            await stage.handle(valid, events)  # read just now
            for role in ("ad-requests", "feedback"):
                stage.note_ends(role, {0: 7})  # first seen just now
            await stage.flush_idle(caught_up)
            await stage.released()

        asyncio.run(go())
        return [e.id for v in sent for e in decode_examples(v)[0]]

    now = time.time()
    assert run(now - 30.0, reading_since=now - 60.0) == ["r1/a"]
    assert run(time.time(), reading_since=now - 60.0) == []
    assert run(now - 365 * 86400.0, reading_since=None) == []
