"""The join stage: requests and feedback (one stream of both topics) into labelled examples.

One :class:`Joiner` per partition and tenant: each tenant's event-time clock is its own, so a
tenant whose events run late or early (or a replay of history beside live traffic) never
closes another tenant's windows. An event's offset is acknowledged only once the request it
belongs to has been released as examples (and those are on Kafka), so a restarted worker
re-reads every request still in a window and rebuilds it; examples it makes twice carry the same
ids, and the trainer learns each id once.

Acknowledgements go strictly in offset order, per partition: Faust commits the run of
acknowledged offsets after the last commit, and does not notice a gap of one message there (nor
any gap before its first commit), so acknowledging a later event while an earlier one is held
could commit past the held one. Before acknowledging, the join awaits ``before_ack``: what the
earlier stages did with those events without waiting (ClickHouse rows, recommendations sent)
is then durable too.

In ``request`` order the examples of a tenant's partitions pass through an
:class:`~streams.join.merge.OrderedMerge`, so the trainer gets them in request-time order however
unevenly the partitions are read; a request whose examples the merge still holds keeps its
events unacknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque

from streams.contracts.events import InvalidEvent, TrainingExample, dead_letter, encode
from streams.contracts.example_batches import encode_examples
from streams.join.joiner import Joiner
from streams.join.merge import OrderedMerge
from streams.worker.acks import ack_events, hold_events
from streams.worker.runtime import Runtime

# held events past which the agent waits for a release in flight: a bound on memory when
# releases fall behind (most held events wait for their window or the merge, not a release)
MAX_UNACKED = 500_000

log = logging.getLogger(__name__)


class JoinStage:
    def __init__(self, runtime: Runtime, before_ack=None):
        self.rt = runtime
        self.before_ack = before_ack  # async callable, or None
        self._acking = asyncio.Lock()  # the agent and the idle flush: one in-order release
        self._releasing: asyncio.Future | None = None  # a release in the background
        self._release_again = False
        s = runtime.settings
        self.window, self.order, self.idle_flush = s.join_window, s.join_order, s.join_idle_flush
        self.joiners: dict[tuple[int, str], Joiner] = {}  # (partition, tenant) -> joiner
        self.by_tenant: dict[str, list[tuple[int, Joiner]]] = defaultdict(list)
        self.merge = OrderedMerge() if s.join_merge and s.join_order == "request" else None
        self.partition_lag: dict[int, int] = {}  # request partition -> unread (housekeeping)
        self.caught_up_lag = s.batch_size
        self.queue: dict = defaultdict(deque)  # TP -> deque of (event, joiner key, request id)
        self.last_event = 0.0
        self.started = time.monotonic()
        # a release that waits longer than this on ``before_ack`` means Kafka or ClickHouse
        # was away; the inputs' quiet counts from when it went through (``resumed``)
        self.stalled = max(5.0, 3 * s.sink_max_seconds)
        self.resumed = 0.0  # monotonic
        self.last_by_role = {"ad-requests": 0.0, "feedback": 0.0}  # monotonic, last valid event
        self.last_ends: dict[str, dict] = {}  # role -> {partition: end offset} last noted
        self.last_produced: dict[str, float] = {}  # role -> monotonic, when its ends last moved
        self.last_written: dict[str, float] = {}  # role -> the newest record's Kafka timestamp
        self.first_read: dict[str, float] = {}  # role -> wall clock of its first valid event
        self.next_offset: dict = {}  # TP -> next offset to handle
        self._dropped_seen: dict[str, int] = defaultdict(int)

    def joiner(self, key: tuple[int, str]) -> Joiner:
        if key not in self.joiners:
            j = self.joiners[key] = Joiner(self.window, self.order,
                                           track_requests=self.merge is not None)
            self.by_tenant[key[1]].append((key[0], j))
        return self.joiners[key]

    def _bounds(self, tenant: str) -> list[float]:
        """Per partition of ``tenant``: the earliest request time it may still release."""
        bounds, seen = [], set()
        for partition, j in self.by_tenant[tenant]:
            seen.add(partition)
            head = j.earliest_open()
            if head is not None:
                bounds.append(head)
            elif (self.partition_lag.get(partition, self.caught_up_lag + 1) > self.caught_up_lag
                  and j.last_request_time > float("-inf")):
                bounds.append(j.last_request_time)  # more of its requests are still unread
        for partition, lag in self.partition_lag.items():
            if partition not in seen and lag > self.caught_up_lag:
                bounds.append(float("-inf"))  # unread, none of this tenant's read there yet
        return bounds

    def _merged(self, made: dict[tuple[int, str], list[TrainingExample]]) -> list:
        """What the joiners released, in the order to emit it."""
        if self.merge is None:
            return [ex for exs in made.values() for ex in exs]
        for key, exs in made.items():
            rids = self.joiners[key].made_for()
            if exs:
                self.merge.add(key[1], list(zip(exs, rids, strict=True)))
        out = []
        for tenant in self.merge.tenants():
            out += self.merge.release(tenant, self._bounds(tenant))
        return out

    async def handle(self, valid: dict[str, list], batch: list) -> None:
        """``valid``: role -> [(event, record, partition)] from the ingest stage (``partition``:
        the one its request id belongs to); ``batch``: every event.
        Each event gets an extra reference (the batch's own acknowledgement skips it) and is
        acknowledged in offset order once its request is released."""
        started = time.perf_counter()
        current = self.rt.current(batch)  # (no await from here to the queue: one step)
        if len(current) < len(batch):  # fetched before a rebalance: read again, not held
            keep = {id(ev) for ev in current}
            valid = {role: [v for v in vs if id(v[0]) in keep] for role, vs in valid.items()}
            batch = current
        made: dict[tuple[int, str], list[TrainingExample]] = defaultdict(list)
        placed = []
        for role in ("ad-requests", "feedback"):
            if valid.get(role):
                self.last_by_role[role] = time.monotonic()
                self.first_read.setdefault(role, time.time())
                written = max((ts for ts in (v[0].message.timestamp for v in valid[role])
                               if ts is not None), default=None)
                if written is not None:
                    self.last_written[role] = max(self.last_written.get(role, written), written)
            for ev, rec, partition in valid.get(role, ()):
                key = (partition, rec.tenant)
                j = self.joiner(key)
                if role == "ad-requests":
                    made[key] += j.on_request(rec)
                    placed.append((ev, key, rec.id))
                else:
                    made[key] += j.on_feedback(rec)
                    placed.append((ev, key, rec.request_id))
        if made:
            self.last_event = time.monotonic()
        for key in list(made):
            made[key] += self.joiner(key).advance()
        out = self._merged(made)
        rid_of = {id(ev): (key, rid) for ev, key, rid in placed}
        hold_events(batch)  # invalid ones too: they must not jump the queue
        for ev in batch:
            key, rid = rid_of.get(id(ev), (None, None))
            self.queue[ev.message.tp].append((ev, key, rid))
        self._emit(out)
        await self._release_behind()
        self.rt.observe("join", len(placed), started)
        self._gauges()

    def note_offsets(self, batch: list) -> None:
        """Remember how far each input partition has been handled (for :meth:`flush_idle`)."""
        for ev in batch:
            tp = ev.message.tp
            self.next_offset[tp] = max(self.next_offset.get(tp, 0), ev.message.offset + 1)

    def note_ends(self, role: str, ends: dict) -> None:
        """The end offsets of ``role``'s partitions, as the consumer's fetches last saw them.
        While they move, producers are still writing; once they stand still, an input is
        quiet from then on, however recently this worker read its last event (a worker
        catching up a backlog reads up to the end long after the producers stopped). A
        partition whose end is not known yet (``None``) is left out."""
        ends = {p: end for p, end in ends.items() if end is not None}
        if ends != self.last_ends.get(role):
            self.last_ends[role] = dict(ends)
            self.last_produced[role] = time.monotonic()

    async def flush_idle(self, caught_up) -> None:
        """Idle inputs no longer hold windows open, once the join has handled everything on
        their partitions (``caught_up(role)``; ``caught_up()`` for both). Idleness alone is
        not enough: a consumer that is merely behind would close windows whose impressions it
        has not read yet.

        - Nothing came on either input for ``join_idle_flush`` seconds (the end of a replay,
          producers gone quiet): every open window closes. An input is quiet since the last
          valid event read from it, since its end offsets last moved (:meth:`note_ends`, where
          the consumer tells them), or since the newest of its records read was written (its
          Kafka timestamp: the producer's clock, or the broker's where the topic appends
          its own), whichever is longer ago. Read to the end, the last is exact; the others
          are when this worker learnt of it, which a worker working through a backlog does
          late: the end offsets of a partition it had not fetched since the producers stopped
          "moved" when it did, seconds after (docs/benchmarks.md). A timestamp counts only if
          it is no earlier than this worker's first read of the input: a producer may stamp
          history with its own times (a replay of last year, a connector), and records stamped
          before anything was read here say nothing of when the input last moved.
        - Only one input is idle (requests go on, feedback stopped or never came: requests a
          replica answered that were never shown): the idle input's clock runs on with the
          wall clock (:meth:`Joiner.idle_clock`), so each window closes ``join_window`` after
          its request and memory stays bounded. Feedback that comes after all is late,
          counted as such.

        It first waits for the releases in flight (through a backlog the agent's releases
        come back to back, 11-13 s in a run of two workers), then decides on what it sees
        then: at the end of a backlog the last windows close at once, not a timer's tick
        later. A release that waited on ``before_ack`` longer than ``stalled`` seconds (a
        broker or ClickHouse outage: its sends or rows could not go) sets ``resumed``, and no
        input counts as quiet for longer than since then: once the broker is back, the
        consumer reads to the end before the producers, retrying on their own backoff, have
        sent again, and by every other clock the inputs look quiet for as long as the outage
        lasted; closing every window then made the feedback sent after the outage late (the
        broker-restart chaos test). It returns once what it released is acknowledged.
        """
        await self._release_finished()
        now = time.monotonic()
        wall = time.time()
        quiet = {r: min(max(now - (t or self.started), now - self.last_produced.get(r, now),
                            wall - self._written(r, wall)), now - self.resumed)
                 for r, t in self.last_by_role.items()}
        held = len(self.merge) if self.merge is not None else 0
        idle = [r for r, q in quiet.items() if q > self.idle_flush]
        out = []
        if not (held or any(len(j) for j in self.joiners.values())) or not idle:
            out = self._merged({})  # the partitions' lags have moved since the last batch
        elif len(idle) == 2 and await caught_up():
            log.info("both inputs idle %.1f s and read to their end: every open window "
                     "closes", min(quiet.values()))
            out = self._merged({key: j.flush() for key, j in self.joiners.items()})
            if self.merge is not None:
                out += self.merge.release_all()
        elif len(idle) == 1 and await caught_up(idle[0]):
            live = "feedback" if idle[0] == "ad-requests" else "ad-requests"
            log.info("%s idle %.1f s and read to its end: its clock runs with the wall "
                     "clock, behind %s", idle[0], quiet[idle[0]], live)
            out = self._merged({key: j.advance(j.idle_clock(idle[0], quiet[idle[0]]))
                                for key, j in self.joiners.items()})
        else:
            out = self._merged({})
        if out:
            self._emit(out)
        await self._release_finished()
        self._gauges()

    def _written(self, role: str, default: float) -> float:
        """When ``role``'s newest record read was written, where its timestamp can say."""
        written = self.last_written.get(role)
        if written is None or written < self.first_read.get(role, float("inf")):
            return default
        return written

    def _emit(self, examples: list[TrainingExample]) -> None:
        """Send the examples without waiting: an event is acknowledged only after Kafka
        confirms everything sent before (``before_ack``)."""
        if not examples:
            return
        self.rt.send("examples", encode_examples(examples))
        m = self.rt.metrics
        pos = sum(e.label for e in examples)
        m.joined.labels("click").inc(pos)
        m.joined.labels("no_click").inc(len(examples) - pos)

    async def _release_behind(self) -> None:
        """Acknowledge what is finished in the background, while the agent goes on to its
        next batch (the acknowledgement waits for ClickHouse and Kafka to confirm). A failure
        there surfaces at the next batch; past ``MAX_UNACKED`` held events the agent waits."""
        task = self._releasing
        if task is not None and task.done():
            task.result()  # raises what the release raised: the agent stops the worker
            task = None
        if task is None:
            self._releasing = asyncio.ensure_future(self._release_finished())
        else:
            self._release_again = True
        if sum(len(q) for q in self.queue.values()) > MAX_UNACKED:
            await self._releasing

    async def on_rebalance(self) -> None:
        """Let go of every open window and held event, unacknowledged: a partition's next
        reader rebuilds its windows from the committed offset (examples made twice carry the
        same ids, learned once)."""
        await self.released()
        async with self._acking:
            held = sum(len(q) for q in self.queue.values())
            if held:
                log.info("rebalance: %d events held for open windows are let go, to be read "
                         "again: %s", held, ", ".join(
                             f"{tp[0]}[{tp[1]}] {q[0][0].message.offset}.."
                             f"{q[-1][0].message.offset}" for tp, q in self.queue.items() if q))
            self.joiners.clear()
            self.by_tenant.clear()
            self.queue.clear()
            self.next_offset.clear()
            if self.merge is not None:
                self.merge = OrderedMerge()
            self.partition_lag = {}
            self._dropped_seen.clear()  # the counts start again with the new joiners
            self.started = time.monotonic()  # idleness counts from the new assignment
            self.last_by_role = dict.fromkeys(self.last_by_role, 0.0)
            self.last_ends, self.last_produced, self.last_written = {}, {}, {}
            self.first_read = {}

    async def released(self) -> None:
        """Until the release in the background (if any) is done."""
        if self._releasing is not None:
            await self._releasing

    async def _release_finished(self) -> None:
        """Acknowledge, per partition and in offset order, every event whose request is no
        longer open."""
        async with self._acking:
            await self._release()
            while self._release_again:
                self._release_again = False
                await self._release()

    async def _release(self) -> None:
        orphans = []
        for j in self.joiners.values():
            j.drain_finished()
            orphans += j.drain_orphans()
        if orphans:  # durable before their events are acknowledged below
            await self.rt.dead_letters("feedback", [self._orphan_letter(fb) for fb in orphans])
        done = []
        for q in self.queue.values():
            n = 0
            for _ev, key, rid in q:
                j = self.joiners.get(key)
                if rid is not None and ((j is not None and j.is_open(rid))
                                        or (self.merge is not None and self.merge.holds(rid))):
                    break
                n += 1
            done.append((q, n))
        if not any(n for _, n in done):
            return
        if self.before_ack is not None:
            began = time.monotonic()
            await self.before_ack()
            if time.monotonic() - began > self.stalled:
                self.resumed = time.monotonic()
                log.info("acknowledgements waited %.1f s for Kafka or ClickHouse: the inputs "
                         "count as quiet only from now", self.resumed - began)
        ack_events([q.popleft()[0] for q, n in done for _ in range(n)])

    def _orphan_letter(self, fb):
        err = InvalidEvent("request_id", f"no request {fb.request_id!r} came within the "
                                         f"late-click window ({self.window:.0f} s of event time)")
        return dead_letter(encode(fb), err, self.rt.topics["feedback"], now=time.time(),
                           key=fb.request_id.encode(), event_id=fb.id)

    def _gauges(self) -> None:
        m = self.rt.metrics
        m.join_pending.set(sum(len(j) for j in self.joiners.values()))
        m.join_merge_held.set(len(self.merge) if self.merge is not None else 0)
        totals: dict[str, int] = {r: 0 for r in ("late_feedback", "orphan_feedback",
                                                 "late_requests")}
        for j in self.joiners.values():
            for reason in ("late_feedback", "orphan_feedback", "late_requests"):
                totals[reason] += j.stats[reason]
        for reason, total in totals.items():
            m.join_dropped.labels(reason).inc(total - self._dropped_seen[reason])
            self._dropped_seen[reason] = total
