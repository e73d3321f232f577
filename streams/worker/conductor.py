"""Faust's conductor with a delivery that needs no coroutine in the common case: the app's
``Conductor`` (our transport's).

Faust hands every fetched message to ``Conductor.on_message``, a coroutine that takes the
conductor's lock to look up the partition's handler and awaits it; the handler (built per
partition by ``ConductorCompiler``) awaits flow control and the producer buffer, decodes the
message into an event for each channel and puts it on the channel's queue, waiting if the
queue is full. A do-nothing agent spent a quarter of its time in that chain (py-spy), two
coroutines and a lock per message. Most of the time none of its waits waits:
:meth:`Conductor.put_now` returns, per partition, a plain function that does the handler's work
when flow is active, the producer buffer is ebbed, the partition has one channel, whose schema
builds events from raw bytes (:class:`streams.worker.schema.Schema`) and whose queue is below
its high-pressure mark, and returns False, having done nothing, otherwise: the consumer then
takes Faust's own path for that message. While the conductor rebuilds its handlers (under its
lock) there is no such function, and each message waits for the lock as in Faust.

Below the high-pressure mark Faust's own handler puts the event without calling any pressure
callback, as :meth:`put_now` does; from it on, Faust's handler runs and tells the consumer to
stop fetching the partition.
"""

from __future__ import annotations

from collections.abc import Callable

from faust.transport import conductor as faust_conductor
from faust.types import TP, Message

from streams.worker.schema import Schema

Put = Callable[[Message], bool]


class Conductor(faust_conductor.Conductor):
    _put_now: dict[TP, Put | None] = {}  # per partition, rebuilt with Faust's handlers

    def put_now(self, tp: TP) -> Put | None:
        """The partition's delivery without a coroutine (see the module), or None where its
        messages take Faust's path: more than one channel, another schema, or handlers being
        rebuilt."""
        if self._tp_to_callback_lock.locked():
            return None
        return self._put_now.get(tp)

    def _update_callback_map(self) -> None:
        super()._update_callback_map()
        self._put_now = {tp: self._build_put_now(channels)
                         for tp, channels in self._tp_index.items()}

    def _build_put_now(self, channels) -> Put | None:
        if len(channels) != 1:
            return None
        [channel] = channels
        schema = channel.schema
        if not isinstance(schema, Schema):
            return None
        make = schema.event_maker(self.app)
        if make is None:
            return None
        flow_active = self.app.flow_control.is_active
        ebbed = self.app.producer.buffer.ebbed

        def put(message: Message) -> bool:
            queue = channel.queue
            if not flow_active() or not ebbed() or queue.qsize() >= queue.pressure_high_size:
                return False
            # the channel's reference. Faust's incref takes the process-wide ack lock (6% of
            # a do-nothing agent, py-spy); no other thread can see this message before it is
            # on the queue, so its count is raised without it
            message.refcount += 1
            queue.force_put_nowait(make(message))
            return True

        return put
