"""The train stage: labelled examples into every model of the tenant's set, predict-then-learn.

Offsets are acknowledged only when a checkpoint (models + learned ids + metrics) that includes
their examples is on Kafka. A crash loses at most the work since the last checkpoint; the
worker restarts from that checkpoint, re-reads the uncommitted tail, and skips every id the
checkpoint already learned: each example is learned exactly once.

Learning a batch and taking a checkpoint exclude each other (one lock): the housekeeping timer
checkpoints while the agent may be between awaits of a batch, and a checkpoint must acknowledge
exactly the events whose learning (and predictions) its state includes. A batch's events join
the held ones only once it is learned: if learning raises, the agent crashes the worker (see
:mod:`streams.worker.app`) and no later checkpoint can acknowledge them.

Examples too old for the exactly-once horizon (:mod:`learners.dedup`) go to the dead letters
with the reason, as do malformed ones; nothing is dropped without a trace.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import orjson

from learners.base import Phased
from sinks import schema
from streams.contracts import batches
from streams.contracts.events import InvalidEvent, dead_letter, encode
from streams.contracts.example_batches import decode_example_batches
from streams.state.checkpoints import CheckpointStore
from streams.state.model_sets import load_checkpoint, seal_model_set
from streams.state.model_updates import SnapshotPublisher
from streams.state.statefile import StateRejected
from streams.training.model_set import ModelSet
from streams.training.trainer import Trainer, make_trainer, warm_up
from streams.worker.acks import ack_events, hold_events
from streams.worker.runtime import Runtime
from streams.worker.write_behind import write_behind

log = logging.getLogger(__name__)


class TrainStage:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.store = CheckpointStore(runtime.settings, runtime.state_key)
        self.publisher = SnapshotPublisher(runtime.settings)
        self._trainer: Trainer | None = None
        self._restoring = threading.Lock()
        self.generation = 0  # group generations seen: a rebalance makes a restore in flight stale
        self.held: list = []
        self.next_offset: dict = {}
        self.last_checkpoint = time.monotonic()
        self.dirty: set[str] = set()  # tenants that learned since the last checkpoint
        self.lock = asyncio.Lock()  # learning, and taking a checkpoint's cut
        self._checkpointing = asyncio.Lock()  # one checkpoint at a time
        self.writes = write_behind(runtime)

    @property
    def trainer(self) -> Trainer:
        """Restored from the checkpoints on first use (not at import, not at app creation),
        once: the score and train stages both ask for it from worker threads, and a second
        restore would replace the trainer the first one is already learning into.

        A restore that a rebalance overtook is read again: the checkpoints it read may predate
        ones the partition's previous owner saved (and whose offsets it committed) before
        letting go, and learning on from that older state would skip their examples."""
        trainer = self._trainer
        if trainer is not None:
            return trainer
        with self._restoring:
            while (trainer := self._trainer) is None:
                generation = self.generation
                self._trainer = trainer = make_trainer(self.rt.settings, self._restore(),
                                                       specs=self.rt.spec_records)
                if generation == self.generation:  # (a rebalance sets the count, then None)
                    return trainer
                self._trainer = None
                log.info("a rebalance came while the checkpoints were read: reading again")
            return trainer

    def _restore(self) -> dict[str, ModelSet]:
        """Every tenant's checkpoint that this worker can trust and read; the others are
        logged and counted, and their tenants start fresh."""
        states, rejected = self.store.load()
        restored = {}
        for tenant, data in states.items():
            try:
                restored[tenant] = ms = load_checkpoint(data, self.rt.state_key)
                log.info("tenant %r restored from its checkpoint: version %d, %d examples",
                         tenant, ms.version, ms.examples_handled)
                # what this worker's checkpoint gauges say is now the checkpoint it holds
                self.rt.metrics.checkpointed.labels(tenant).set(ms.examples_handled)
                self.rt.metrics.dedup_ids.labels(tenant).set(len(ms.learned))
                self.rt.metrics.model_version.labels(tenant).set(ms.version)
            except StateRejected as exc:
                log.error("checkpoint of tenant %r not read, it starts fresh: %s", tenant,
                          exc.reason)
                self.rt.metrics.state_rejected.labels("checkpoints", exc.code).inc()
        for r in rejected:
            self.rt.metrics.state_rejected.labels("checkpoints", r.code).inc()
        return restored

    async def handle(self, events: list, topic_role: str = "examples") -> None:
        async with self.lock:
            await self._learn(events, topic_role)
        await self.maybe_checkpoint()

    async def _learn(self, events: list, topic_role: str) -> None:
        events = self.rt.current(events)  # (under the lock: a rebalance waits for it)
        if not events:
            return
        started = time.perf_counter()
        now = int(time.time())
        good, bad = decode_example_batches([batches.Raw.of(e) for e in events], time.time())
        await self.rt.dead_letters(topic_role, bad)
        fresh = self._trainer is None
        trainer = await asyncio.to_thread(lambda: self.trainer)
        if fresh:
            log.info("learning from %s", _offsets(events))
        self._rebuilt(trainer.sync_specs())
        results = trainer.process(good)
        m = self.rt.metrics
        for tenant, res in results.items():
            ms = trainer.sets[tenant]
            await self.writes.write(schema.EXAMPLES, batches.example_rows(
                res.examples, now, res.holdout.tolist()))
            await self.writes.write(schema.PREDICTIONS,
                                    batches.prediction_rows(tenant, res, ms.version, now))
            await self._late(topic_role, tenant, res.late, ms)
            await self._refused(topic_role, tenant, res.refused)
            m.learned.labels(tenant).inc(int((~res.holdout).sum()))
            m.duplicates.labels(tenant).inc(res.duplicates)
            for model, n in res.nonfinite.items():
                m.nonfinite.labels(tenant, model).inc(n)
            for model, secs in res.seconds.items():
                m.learn_seconds.labels(model).observe(secs)
            if res.examples:
                self.dirty.add(tenant)
        # learned: only now may a checkpoint acknowledge them
        hold_events(events)  # released by the next checkpoint
        for ev in events:
            tp = ev.message.tp
            self.next_offset[tp] = max(self.next_offset.get(tp, 0), ev.message.offset + 1)
        self.held += events
        m.consumed.labels(topic_role).inc(len(events))
        m.examples_read.inc(len(good) + len(bad))
        self.rt.observe("train", len(events), started)

    async def _late(self, role: str, tenant: str, late: list, ms: ModelSet) -> None:
        if not late:
            return
        self.rt.metrics.late.labels(tenant).inc(len(late))
        floor = ms.learned.floor
        err = ValueError(f"event time at or before the exactly-once horizon ({floor:.0f}): "
                         "its id may have been learned already and is no longer remembered")
        await self.rt.dead_letters(role, [
            dead_letter(encode(e), err, self.rt.topics[role], now=time.time(),
                        key=e.id.encode(), event_id=e.id) for e in late])

    async def _refused(self, role: str, tenant: str, refused: list) -> None:
        """Examples with a value of the wrong type for the tenant's column: dead letters
        naming the feature, not learned."""
        if not refused:
            return
        self.rt.metrics.refused.labels(tenant).inc(len(refused))
        await self.rt.dead_letters(role, [
            dead_letter(encode(e), InvalidEvent(fld, reason), self.rt.topics[role],
                        now=time.time(), key=e.id.encode(), event_id=e.id)
            for e, fld, reason in refused])

    def _rebuilt(self, changed: dict[str, list[str]]) -> None:
        for tenant, outputs in changed.items():
            self.dirty.add(tenant)  # its next checkpoint publishes the new graph's snapshot
            log.info("tenant %r rebuilt to its model graph: new %s", tenant,
                     ", ".join(outputs) or "nothing (only the outputs served changed)")

    async def sync_specs(self) -> None:
        """Rebuild the sets whose tenant's graph changed, between batches (housekeeping)."""
        if self._trainer is None:
            return
        async with self.lock:
            if self._trainer is not None:
                self._rebuilt(self._trainer.sync_specs())

    async def maybe_checkpoint(self, force: bool = False) -> None:
        """A checkpoint when one is due and none is being taken: of events learned, or of
        sets rebuilt to a new graph."""
        due = time.monotonic() - self.last_checkpoint >= self.rt.settings.checkpoint_interval
        if (self.held or self.dirty) and (force or due) and not self._checkpointing.locked():
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """Save and publish what has been learned, then acknowledge the events it learned.

        The cut is taken under the learning lock: the held events, the tenants that learned,
        their state sealed, the row writes of those events. Then learning goes on while the
        rows are written and the state is saved and published; only then are those events
        acknowledged. One checkpoint at a time, so acknowledgements keep their order."""
        async with self._checkpointing:
            started = time.perf_counter()
            async with self.lock:
                if not self.held and not self.dirty:
                    return
                held, self.held = self.held, []
                dirty, self.dirty = sorted(self.dirty), set()
                rows = self.writes.take()  # the held events' rows, written before their ack
                trainer = self.trainer
                sealed = []
                for tenant in dirty:
                    ms = trainer.sets[tenant]
                    alerts = ms.check_guard()
                    checkpoint, snapshot = await asyncio.to_thread(seal_model_set, ms,
                                                                   self.rt.state_key)
                    sealed.append((tenant, checkpoint, snapshot, ms.metrics(), alerts,
                                   ms.examples_handled))
                self.last_checkpoint = time.monotonic()
            for write in rows:
                await write
            now = int(time.time())
            for tenant, checkpoint, snapshot, metrics, alerts, handled in sealed:
                await self.alert(alerts)
                await asyncio.to_thread(self.store.save, tenant, checkpoint)
                # serving replicas swap to this version (training state left out)
                await asyncio.to_thread(self.publisher.publish, tenant, snapshot)
                await self.rt.write(schema.MODEL_METRICS,
                                    batches.metric_rows(tenant, metrics, now))
                ms = trainer.sets[tenant]
                self._gauges(tenant, ms, metrics)
                self.rt.metrics.checkpointed.labels(tenant).set(handled)
                self.rt.metrics.dedup_ids.labels(tenant).set(len(ms.learned))
                self.rt.metrics.dedup_floor.labels(tenant).set(max(ms.learned.floor, 0.0))
            ack_events(held)
            log.debug("checkpoint of %s acknowledged %s",
                      ", ".join(f"{t} ({n} examples)" for t, *_, n in sealed), _offsets(held))
            self.rt.metrics.checkpoint_seconds.observe(time.perf_counter() - started)

    async def on_rebalance(self) -> None:
        """Let go of every tenant and held event: a checkpoint being taken lands first (so a
        tenant's next trainer, here or in another worker, restores from it), then nothing
        more is saved from this state; the trainer is restored again on the next batch."""
        async with self._checkpointing:
            async with self.lock:
                if self.held:
                    log.info("rebalance: %d events learned since the last checkpoint are let "
                             "go, to be read again: %s", len(self.held), _offsets(self.held))
                self.held, self.dirty = [], set()
                self.writes.take()  # their rows land anyway; ClickHouse collapses repeats
                self.generation += 1
                self._trainer = None
                self.next_offset = {}

    def warm_up(self) -> None:
        """Before the first batch (a thread): restore the trainer, connect the producers and
        ClickHouse, so that the first checkpoint does not pay for them while the stream
        flows. The tenants' model graphs are read first, so that sets are made from them."""
        self.rt.follow_specs()
        self.rt.run_tasks()
        self.trainer  # noqa: B018 - restores on first use
        warm_up(self.rt.settings)
        self.store.connect()
        self.publisher.connect()
        self.rt.sink(schema.MODEL_METRICS)

    async def alert(self, alerts: list[dict]) -> None:
        """Overfitting/degrading alerts: an event on the alerts topic and a metric."""
        if not alerts:
            return
        await self.rt.produce("alerts", [(a["model"].encode(), orjson.dumps(a)) for a in alerts])
        for a in alerts:
            self.rt.metrics.alerts.labels(a["tenant"], a["model"], a["reason"]).inc()
            if a["rolled_back"]:
                self.rt.metrics.rollbacks.labels(a["tenant"], a["model"]).inc()

    def _gauges(self, tenant: str, ms: ModelSet, metrics: dict) -> None:
        m = self.rt.metrics
        m.model_version.labels(tenant).set(ms.version)
        for name, model in ms.models.items():
            if isinstance(model, Phased):
                m.phase.labels(tenant, name).set(model.phase)
        for name, comb in ms.ensembles.items():
            for i, w in enumerate(comb.state().get("weights", [])):
                members = ms.member_outputs()
                if i < len(members):
                    m.ensemble_weight.labels(tenant, name, members[i]).set(w)
        for model, s in metrics.items():
            m.model_logloss.labels(tenant, model, "progressive").set(s["logloss"])
            m.model_auc.labels(tenant, model, "progressive").set(s["auc"])
            m.model_logloss.labels(tenant, model, "window").set(s["window_logloss"])
            m.model_auc.labels(tenant, model, "window").set(s["window_auc"])
            m.model_logloss.labels(tenant, model, "holdout").set(s["holdout_logloss"])
            m.model_auc.labels(tenant, model, "holdout").set(s["holdout_auc"])
            if s["ctr"]:
                m.model_calibration.labels(tenant, model).set(s["mean_p"] / s["ctr"])
            m.model_examples.labels(tenant, model).set(s["examples"] + s["holdout_examples"])


def _offsets(events: list) -> str:
    """The offsets of ``events`` per partition, as first..last ranges (for the logs)."""
    spans: dict = {}
    for ev in events:
        m = ev.message
        lo, hi = spans.get(m.tp, (m.offset, m.offset))
        spans[m.tp] = (min(lo, m.offset), max(hi, m.offset))
    return ", ".join(f"{tp[0]}[{tp[1]}] {lo}..{hi}"  # (a TP is a (topic, partition) tuple)
                     for tp, (lo, hi) in spans.items()) or "nothing"
