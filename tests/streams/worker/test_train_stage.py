"""The train stage without Kafka: a checkpoint taken by the housekeeping timer while the agent is
in the middle of a batch acknowledges exactly the events its saved state has learned; a
rebalance lets go of what was not saved; restores are read once, and again if overtaken."""

from __future__ import annotations

import asyncio
import time

from streams.state.model_sets import load_checkpoint
from streams.training.model_set import id_hash
from tests.helpers import KEY, examples
from tests.streams.worker.fakes import FakeEvent, fake_events, stage


def learning(tmp_path, n: int):
    """A train stage, ``n`` examples as consumed events, and the list their acks go to."""
    st, acked, exs = stage(tmp_path), [], examples(n)
    return st, acked, exs, fake_events(exs, acked)


def test_a_checkpoint_acknowledges_only_what_its_state_learned(tmp_path):
    st, acked, exs, events = learning(tmp_path, 300)

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
    st, acked, exs, events = learning(tmp_path, 200)

    async def run():
        await st.handle(events[:100])
        await asyncio.gather(st.checkpoint(), st.handle(events[100:]))
        for ev in events:
            ev.ack()
        await st.maybe_checkpoint(force=True)

    asyncio.run(run())
    assert load_checkpoint(st.store.saved["t"], KEY).examples_learned == 200
    assert len(acked) == 200


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


def test_a_value_of_the_wrong_type_is_a_dead_letter_naming_the_feature(tmp_path):
    from dataclasses import replace

    st, acked, exs, _ = learning(tmp_path, 200)
    batch = [replace(e, features={**e.features, "score": "high"}) if i in (150, 151) else e
             for i, e in enumerate(exs)]
    letters = []

    async def dead_letters(role, bad):
        letters.extend(bad)

    st.rt.dead_letters = dead_letters

    async def run():
        await st.handle(fake_events(batch, acked))
        await st.checkpoint()

    asyncio.run(run())
    assert [(d.field, d.id) for d in letters] == [
        ("features.score", f"{st.rt.topics['examples']}/e150"),
        ("features.score", f"{st.rt.topics['examples']}/e151")]
    assert "'high' (a str)" in letters[0].reason and '"id":"e150"' in letters[0].payload
    assert load_checkpoint(st.store.saved["t"], KEY).examples_handled == 198
    assert st.rt.registry.get_sample_value("aimass_examples_refused_total", {"tenant": "t"}) == 2
