"""The join stage: requests and feedback (one stream of both topics) into labelled examples.

One :class:`Joiner` per partition. An event's offset is acknowledged only once the request it
belongs to has been released as examples (and those are on Kafka), so a restarted worker
re-reads every request still in a window and rebuilds it; examples it makes twice carry the same
ids, and the trainer learns each id once.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from .events import AdRequest, Feedback, TrainingExample, decode, encode
from .joiner import Joiner
from .runtime import Runtime


class JoinStage:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        s = runtime.settings
        self.window, self.order, self.idle_flush = s.join_window, s.join_order, s.join_idle_flush
        self.joiners: dict[int, Joiner] = {}
        self.held: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.last_event = 0.0
        self._dropped_seen: dict[str, int] = defaultdict(int)

    def joiner(self, partition: int) -> Joiner:
        if partition not in self.joiners:
            self.joiners[partition] = Joiner(self.window, self.order)
        return self.joiners[partition]

    async def handle(self, events: list, requests_topic: str) -> None:
        started = time.perf_counter()
        out: list[TrainingExample] = []
        ack_now, placed = [], []
        touched: set[int] = set()
        for ev in events:
            msg = ev.message
            is_request = msg.topic == requests_topic
            try:
                rec = decode(AdRequest if is_request else Feedback, ev.value)
            except Exception:
                ack_now.append(ev)  # the ingest stage dead-letters it; nothing to join
                continue
            j = self.joiner(msg.partition)
            touched.add(msg.partition)
            out += j.on_request(rec) if is_request else j.on_feedback(rec)
            placed.append((ev, msg.partition, rec.id if is_request else rec.request_id))
        self.last_event = time.monotonic()
        for part in touched:
            out += self.joiner(part).advance()
        for ev, part, rid in placed:
            if rid in self.joiners[part]._pending:
                ev.message.incref()
                self.held[part][rid].append(ev)
            else:
                ack_now.append(ev)
        await self._emit(out)
        for ev in ack_now:
            ev.ack()
        self._release_finished()
        self.rt.observe("join", len(events), started)
        self._gauges()

    async def flush_idle(self) -> None:
        """Close every open window once the whole join input has been idle for
        ``join_idle_flush`` seconds (a partition alone may just be starved by the fetcher)."""
        out: list[TrainingExample] = []
        if self.last_event and time.monotonic() - self.last_event > self.idle_flush:
            for j in self.joiners.values():
                out += j.flush()
        if out:
            await self._emit(out)
        self._release_finished()
        self._gauges()

    async def _emit(self, examples: list[TrainingExample]) -> None:
        if not examples:
            return
        await asyncio.gather(*(self.rt.send("examples", e.id.encode(), encode(e))
                               for e in examples))
        m = self.rt.metrics
        pos = sum(e.label for e in examples)
        m.joined.labels("click").inc(pos)
        m.joined.labels("no_click").inc(len(examples) - pos)
        m.produced.labels("examples").inc(len(examples))

    def _release_finished(self) -> None:
        for part, j in self.joiners.items():
            held = self.held[part]
            for rid in j.drain_finished():
                for ev in held.pop(rid, ()):
                    ev.ack()

    def _gauges(self) -> None:
        m = self.rt.metrics
        m.join_pending.set(sum(len(j) for j in self.joiners.values()))
        totals: dict[str, int] = {r: 0 for r in ("late_feedback", "orphan_feedback",
                                                 "late_requests")}
        for j in self.joiners.values():
            for reason in ("late_feedback", "orphan_feedback", "late_requests"):
                totals[reason] += j.stats[reason]
        for reason, total in totals.items():
            m.join_dropped.labels(reason).inc(total - self._dropped_seen[reason])
            self._dropped_seen[reason] = total
