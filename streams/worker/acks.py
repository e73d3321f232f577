"""Acknowledging a batch of events in one pass, with Faust's semantics.

Faust acknowledges an event with ``Event.ack`` -> ``Message.ack`` -> ``Message.decref`` ->
``ConsumerMessage.on_final_ack`` -> ``Consumer.ack``: five calls and three acquisitions of its
re-entrant ``ack_lock`` per event, each topic's acking looked up again, waiters notified per
event. The worker acknowledges whole batches (a stream's batch, the events a join released,
the events a checkpoint made durable): 5.5% of its main thread went to that chain
(docs/benchmarks.md, 2026-12-07). :meth:`BatchAcks.ack_events` does the same bookkeeping for
a batch under one acquisition of the lock: a message's reference dropped, and on its last one
its offset marked safe to commit exactly as ``Consumer.ack`` marks it. :func:`hold_events`
takes the stage's reference likewise (``Message.incref`` takes the lock per message).
"""

from __future__ import annotations

from collections.abc import Iterable

from faust.types.tuples import ConsumerMessage, ack_lock
from mode.utils.futures import notify


class BatchAcks:
    """A mixin of the app's consumer (:class:`streams.worker.consumer.Consumer`)."""

    def ack_events(self, events: Iterable) -> None:
        """``event.ack()`` of each event, in one pass. Messages other than a consumer's take
        their own final acknowledgement."""
        enabled: dict[str, bool] = {}
        notified = False
        with ack_lock:
            for ev in events:
                m = ev.message
                if m.acked:
                    continue
                m.refcount = rc = max(m.refcount - 1, 0)
                if rc:
                    continue
                if m.__class__ is not ConsumerMessage:
                    m.on_final_ack(self)
                    continue
                m.acked = True  # as Consumer.ack, from here
                on = enabled.get(m.topic)
                if on is None:
                    on = enabled[m.topic] = self.app.topics.acks_enabled_for(m.topic)
                if not on:
                    continue
                notified = True
                tp, offset = m.tp, m.offset
                committed = self._committed_offset[tp]
                if committed is None or offset >= committed:
                    acked_index = self._acked_index[tp]
                    if offset not in acked_index:
                        self._unacked_messages.discard(m)
                        acked_index.add(offset)
                        self._acked[tp].append(offset)
                        self._n_acked += 1
            if notified:
                notify(self._waiting_for_ack)


def hold_events(events: list) -> None:
    """One more reference on each event's message (``message.incref()`` of each; the events of
    one app), for a stage that keeps them past their batch and releases each with
    :func:`ack_events`: under one acquisition of Faust's ack lock where the app's consumer is
    ours, one by one where it is another."""
    if not events:
        return
    if isinstance(events[0].app.consumer, BatchAcks):
        with ack_lock:
            for ev in events:
                ev.message.refcount += 1
    else:
        for ev in events:
            ev.message.incref()


def ack_events(events: list) -> None:
    """Acknowledge ``events`` (one reference each; the events of one app): in one pass where
    the app's consumer is ours, one by one where it is another (Faust's own, a test's)."""
    if not events:
        return
    consumer = events[0].app.consumer
    if isinstance(consumer, BatchAcks):
        consumer.ack_events(events)
    else:
        for ev in events:
            ev.ack()
