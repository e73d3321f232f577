"""The stages without Kafka: a checkpoint taken by the housekeeping timer while the agent is in
the middle of a batch acknowledges exactly the events its saved state has learned; the join
keeps each tenant's event-time clock apart."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
from prometheus_client import CollectorRegistry

from streams.contracts.example_batches import decode_examples, encode_examples
from streams.contracts.topics import topic_names
from streams.settings import Settings
from streams.state.model_sets import load_checkpoint
from streams.training.model_set import id_hash
from streams.worker.metrics import build_metrics
from streams.worker.runtime import Runtime
from streams.worker.train import TrainStage
from tests.helpers import KEY, examples


class FakeMessage:
    def __init__(self, offset: int):
        self.topic, self.partition, self.offset = "examples", 0, offset
        self.tp = ("examples", 0)
        self.key, self.headers = None, []
        self.refs = 1
        self.generation_id = 1

    def incref(self):
        self.refs += 1


class FakeEvent:
    def __init__(self, offset: int, value: bytes, acked: list):
        self.message, self.value, self._acked = FakeMessage(offset), value, acked

    def ack(self):
        self.message.refs -= 1
        if self.message.refs == 0:
            self._acked.append(self)


class FakeRuntime:
    """The stage's view of a worker: settings, metrics, and sinks that take a while."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry)
        self.topics = topic_names(settings)
        self.state_key = KEY
        self.group_generation = 1

    def generation(self):
        return self.group_generation

    def current(self, events):
        return Runtime.current(self, events)

    async def write(self, table, rows):
        await asyncio.sleep(0.01)

    async def produce(self, role, messages):
        await asyncio.sleep(0.01)

    async def dead_letters(self, role, bad):
        assert not bad

    def observe(self, stage, n, started):
        pass


class SlowStore:
    """Checkpoints in memory; saving takes long enough for the agent to run meanwhile."""

    def __init__(self):
        self.saved: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def save(self, tenant: str, state: bytes) -> None:
        time.sleep(0.2)
        with self.lock:
            self.saved[tenant] = state

    def load(self):
        return dict(self.saved), []


class NoPublisher:
    def publish(self, tenant, snapshot):
        pass


def stage(tmp_path) -> TrainStage:
    s = Settings(data_dir=tmp_path, models="ftrl", holdout_fraction=0.0,
                 checkpoint_interval=3600.0)
    st = TrainStage(FakeRuntime(s))
    st.store, st.publisher = SlowStore(), NoPublisher()
    return st


def fake_events(exs, acked: list, start: int = 0) -> list[FakeEvent]:
    """Examples as consumed events at offsets start, start + 1, ..."""
    return [FakeEvent(start + i, encode_examples([e])[0][1], acked) for i, e in enumerate(exs)]


def test_a_checkpoint_acknowledges_only_what_its_state_learned(tmp_path):
    st = stage(tmp_path)
    acked: list[FakeEvent] = []
    exs = examples(300)
    events = fake_events(exs, acked)

    async def run():
        await st.handle(events[:100])
        for ev in events[:100]:  # the agent's own acknowledgement of each batch
            ev.ack()
        # the timer checkpoints while the agent handles the next batch
        await asyncio.gather(st.checkpoint(), st.handle(events[100:200]))
        for ev in events[100:200]:
            ev.ack()
        learned_at_first_save = load_checkpoint(st.store.saved["t"], KEY).learned
        acked_at_first_save = {e.message.offset for e in acked}
        await st.handle(events[200:])
        for ev in events[200:]:
            ev.ack()
        await st.checkpoint()
        return learned_at_first_save, acked_at_first_save

    learned_first, acked_first = asyncio.run(run())
    assert acked_first and all(id_hash(exs[i].id) in learned_first for i in acked_first)
    final = load_checkpoint(st.store.saved["t"], KEY)
    assert final.examples_learned == 300 and len(final.learned) == 300
    assert all(id_hash(e.id) in final.learned for e in exs)
    assert sorted(e.message.offset for e in acked) == list(range(300))
    assert st.rt.registry.get_sample_value("aimass_checkpoint_examples",
                                           {"tenant": "t"}) == 300


def test_learning_during_a_checkpoint_is_saved_by_the_next(tmp_path):
    """The last batch arrives while a checkpoint is being written; nothing comes after it. The
    next checkpoint on the timer must still save it (the end of a replay)."""
    st = stage(tmp_path)
    acked: list[FakeEvent] = []
    exs = examples(200)
    events = fake_events(exs, acked)

    async def run():
        await st.handle(events[:100])
        await asyncio.gather(st.checkpoint(), st.handle(events[100:]))
        for ev in events:
            ev.ack()
        await st.maybe_checkpoint(force=True)

    asyncio.run(run())
    assert load_checkpoint(st.store.saved["t"], KEY).examples_learned == 200
    assert len(acked) == 200


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


def test_a_checkpoint_saves_only_the_tenants_that_learned(tmp_path):
    st = stage(tmp_path)
    acked: list[FakeEvent] = []
    a, b = examples(50, tenant="a"), examples(50, tenant="b", start=50)
    saves: list[str] = []
    save = st.store.save
    st.store.save = lambda tenant, state: (saves.append(tenant), save(tenant, state))

    async def run():
        await st.handle(fake_events(a + b, acked))
        await st.checkpoint()
        await st.handle(fake_events(examples(10, tenant="a", start=200), acked, start=100))
        await st.checkpoint()

    asyncio.run(run())
    assert saves == ["a", "b", "a"]
    assert load_checkpoint(st.store.saved["a"], KEY).examples_learned == 60
    assert load_checkpoint(st.store.saved["b"], KEY).examples_learned == 50


def test_the_trainer_is_restored_once_when_two_stages_ask_at_once(tmp_path):
    """The score and train stages both ask for the trainer from worker threads at start."""
    st = stage(tmp_path)
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return {}, []

    st.store.load = slow_load

    async def run():
        return await asyncio.gather(*(asyncio.to_thread(lambda: st.trainer) for _ in range(4)))

    trainers = asyncio.run(run())
    assert len(loads) == 1 and all(t is trainers[0] for t in trainers)


def test_a_restore_that_a_rebalance_overtook_is_read_again(tmp_path):
    """A worker starting reads the checkpoints, and the group rebalances meanwhile: what it
    read may predate a checkpoint the partition's last owner saved (and committed past)
    before letting go, so that read is discarded and the checkpoints are read again."""
    st = stage(tmp_path)
    loads = []

    def slow_load():
        loads.append(time.monotonic())
        time.sleep(0.3)
        return {}, []

    st.store.load = slow_load

    async def run():
        restoring = asyncio.ensure_future(asyncio.to_thread(lambda: st.trainer))
        await asyncio.sleep(0.1)
        await st.on_rebalance()  # the assignment changes while the first read is under way
        return await restoring

    trainer = asyncio.run(run())
    assert len(loads) == 2 and st.trainer is trainer


def test_the_join_acknowledges_only_after_the_earlier_stages_settle(tmp_path):
    """Ingest writes rows behind and score sends without waiting: the join acknowledges an
    event only once ``before_ack`` (rows written, sends confirmed) is done, and in offset order
    even when the idle flush releases at the same time."""
    from streams.contracts.events import AdRequest, Candidate, Feedback
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
    recs = [AdRequest("r1", 100.0, "t", {"user_id": "u"}, [Candidate("a")]),
            Feedback("r1-i", 101.0, "t", "r1", "a", "impression"),
            AdRequest("r2", 200.0, "t", {"user_id": "u"}, [Candidate("a")]),
            Feedback("r2-i", 201.0, "t", "r2", "a", "impression")]
    events = [FakeEvent(i, b"", acked) for i in range(len(recs))]
    for ev in events:
        ev.message.tp = ("requests", 0)
    valid = {"ad-requests": [(e, r, e.message.partition) for e, r in zip(events, recs,
                                                                          strict=True)
                             if isinstance(r, AdRequest)],
             "feedback": [(e, r, e.message.partition) for e, r in zip(events, recs, strict=True)
                          if isinstance(r, Feedback)]}
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

    asyncio.run(run())
    assert [o for o, _ in acked_at] == [0, 1, 2, 3]  # each once, in order
    assert all(any(s <= t for s in settled) for _, t in acked_at)


def test_a_pause_of_one_input_closes_no_window_a_replay_ran_past(tmp_path):
    """A replay's requests come first (their event time runs hours ahead in a second) while
    feedback is still quiet: the quiet input's clock runs with the wall clock, so the pause
    closes no window, and the clicks that come after it all join."""
    from streams.contracts.events import AdRequest
    from streams.sources import movielens
    from streams.worker.join import JoinStage
    from tests.conftest import REPO

    s = Settings(data_dir=tmp_path, join_idle_flush=5.0)
    rt = FakeRuntime(s)
    produced: list[bytes] = []
    rt.send = lambda role, messages, **kw: produced.extend(v for _, v in messages)
    stage = JoinStage(rt)
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

    async def caught_up(role=None):
        return True

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


def test_the_score_stage_publishes_what_the_api_answers_and_skips_served_ones(tmp_path):
    """One scoring path: for the same snapshot, the worker publishes for each request the
    record ``/recommend`` answers (``served_by`` aside), however many candidates; a request a
    serving replica answered is joined later but not scored (nor published) again."""
    from streams.contracts.events import AdRequest, Candidate
    from streams.serving.ranking import MANY, Ranker
    from streams.serving.snapshots import ModelStore, load_snapshot
    from streams.state.model_sets import snapshot_of
    from streams.worker.score import ScoreStage
    from tests.helpers import trained_snapshot

    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained_snapshot(tenant="t"), KEY), KEY))
    st = stage(tmp_path)
    sent: list = []
    st.rt.send = lambda role, messages: sent.extend(messages)
    score = ScoreStage(st.rt, store)
    user, ctx = {"u_user_id": "7", "u_gender": "F"}, {"hour": 9}
    cands = [Candidate(f"m{i}", {"a_genre": ["Drama", "Comedy"][i % 2], "year": 1990 + i})
             for i in range(3 * MANY)]
    many = AdRequest("many", 1.0, "t", user, cands, ctx)
    few = AdRequest("few", 1.0, "t", user, cands[:2], ctx)
    served = AdRequest("served", 1.0, "t", user, cands, ctx, served=True)
    asyncio.run(score.handle([many, few, served]))
    assert sorted(k for k, _ in sent) == [b"few", b"many"]
    published = {k.decode(): orjson.loads(v) for k, v in sent}
    api = Ranker(store, st.rt.settings.serving_model)  # what /recommend ranks with
    for req in (many, few):
        [answer] = api.rank_many([req])
        got = published[req.id]
        assert got["served_by"] == "worker" and answer.served_by == "replica"
        assert got["ranked"] == answer.ranked and got["model_version"] == answer.model_version
        assert got["model"] == answer.model == "ensemble_stacking"
    assert st.rt.registry.get_sample_value("aimass_requests_already_served_total",
                                           {"tenant": "t"}) == 1


def test_learning_goes_on_while_a_checkpoint_is_saved(tmp_path):
    """The cut is taken under the learning lock; saving (slow here) is not: a batch that
    comes meanwhile is learned before the save ends, and acknowledged only by the next
    checkpoint."""
    st = stage(tmp_path)
    acked: list[FakeEvent] = []
    events = fake_events(examples(200), acked)
    learned_at: list[float] = []

    async def run():
        await st.handle(events[:100])
        for ev in events[:100]:
            ev.ack()

        async def second():
            await asyncio.sleep(0.05)  # the save (0.2 s) is under way
            await st.handle(events[100:])
            learned_at.append(time.monotonic())
            for ev in events[100:]:
                ev.ack()

        await asyncio.gather(st.checkpoint(), second())
        saved_at = time.monotonic()
        first = {e.message.offset for e in acked}
        await st.checkpoint()
        return first, saved_at

    first, saved_at = asyncio.run(run())
    assert first == set(range(100))  # the first checkpoint acknowledged only its cut
    assert learned_at[0] < saved_at
    assert sorted(e.message.offset for e in acked) == list(range(200))


def test_a_rebalance_lets_go_of_held_events_and_state(tmp_path):
    st = stage(tmp_path)
    acked: list[FakeEvent] = []
    asyncio.run(st.handle(fake_events(examples(50), acked)))
    assert st.held and st.trainer.sets["t"].examples_learned == 50
    asyncio.run(st.on_rebalance())
    assert not st.held and not acked  # never acknowledged: the next owner reads them again
    assert "t" not in st.trainer.sets  # restored anew (from the checkpoints: none here)


def test_a_batch_fetched_before_a_rebalance_is_neither_learned_nor_acknowledged(tmp_path):
    """A batch the stream yielded in the former generation reaches the stage after the
    rebalance: its partition is read again from the committed offset, and acknowledging its
    (later) offsets first could let Faust commit past the events read again under them."""
    st = stage(tmp_path)
    acked: list[FakeEvent] = []
    stale = fake_events(examples(50), acked)
    fresh = fake_events(examples(50), acked)
    for ev in fresh:
        ev.message.generation_id = 2

    async def run():
        st.rt.group_generation = 2  # the group rebalanced after the stale batch was fetched
        await st.handle(stale)
        assert not st.held and "t" not in st.trainer.sets
        await st.handle(fresh)
        for ev in fresh:  # the stream lets go of its reference (not of the stale batch's)
            ev.ack()
        assert len(st.held) == 50 and st.trainer.sets["t"].examples_learned == 50
        assert not acked
        await st.checkpoint()

    asyncio.run(run())
    assert acked == fresh


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


def test_a_restored_tenant_shows_its_checkpoint_in_the_gauges(tmp_path):
    """The worker that takes a tenant over reports the checkpoint it restored, even before it
    learns anything more (a tenant whose examples were all learned elsewhere)."""
    first = stage(tmp_path)

    async def learn():
        await first.handle(fake_events(examples(50), []))
        await first.checkpoint()

    asyncio.run(learn())
    second = stage(tmp_path)
    second.store = first.store
    assert second.trainer.sets["t"].examples_handled == 50
    gauge = second.rt.registry.get_sample_value
    assert gauge("aimass_checkpoint_examples", {"tenant": "t"}) == 50
    assert gauge("aimass_model_version", {"tenant": "t"}) == second.trainer.sets["t"].version
