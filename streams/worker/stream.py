"""Faust's stream with a ``take_events`` that takes a batch from the channel's queue in one
pass: the app's ``Stream`` class (the ``Stream`` setting).

Faust's ``Stream.take_events`` fills its batch through the per-event machinery of any stream:
a background task iterates the channel one event at a time through a processor coroutine that
appends to a buffer, sets and waits on events when the buffer is full, and the batch is then
acknowledged one ``await self.ack(event)`` at a time. For an agent that works in batches
that is most of the cost of an event. :meth:`Stream.take_events` reads the queue directly:
every event already there is taken without waiting; only an empty queue is waited on, for at
most ``within`` seconds from the batch's first event. Per event it keeps what the stock loop
does that matters: an event of an older consumer generation, or taken while flow is suspended
(a rebalance), is not yielded, and not acknowledged either (it is read again); a message is tracked as unacked
when first seen (Faust's commit and shutdown logic count on it). Left out: the per-event
``on_stream_event_in``/``out`` sensors and the task-local ``current_event``, which batch
agents do not use. A stream with processors, or over anything but a channel, takes Faust's
own path.
"""

from __future__ import annotations

import asyncio

import faust
from faust.types import ChannelT
from mode.utils.times import want_seconds

from streams.worker.acks import ack_events


class Stream(faust.Stream):
    async def take_events(self, max_: int, within):  # noqa: C901 - one pass over the queue
        if self._processors or not isinstance(self.channel, ChannelT) or self.combined:
            async for batch in super().take_events(max_, within):
                yield batch
            return
        await self.maybe_start()
        app, channel = self.app, self.channel
        queue = channel.queue
        empty, get_nowait, next_event = queue.empty, queue.get_nowait, channel.__anext__
        flow_active = app.flow_control.is_active
        consumer = app.consumer
        add_unacked = consumer.unacked.add
        acking = app.topics.acking_topics
        on_message_in = self._on_message_in
        timeout = want_seconds(within) if within else 1.0
        loop = asyncio.get_running_loop()
        self.enable_acks = False
        stopped = False  # the actor was cancelled (Faust throws StopAsyncIteration at it)
        while not (self.should_stop or stopped):
            events: list = []
            deadline = None
            while len(events) < max_:
                try:
                    if empty():
                        if events:  # some already: wait for more until the batch's deadline
                            left = deadline - loop.time()
                            if left <= 0:
                                break
                        else:
                            left = timeout
                        try:
                            event = await asyncio.wait_for(next_event(), left)
                        except TimeoutError:
                            if events or self.should_stop:
                                break
                            continue
                    else:
                        event = get_nowait()
                except StopAsyncIteration:  # the end of the stream, as Faust's own loop ends
                    stopped = True
                    break
                message = event.message
                if not flow_active() or message.generation_id != app.consumer_generation_id:
                    continue  # fetched before a rebalance: read again after
                if message.topic in acking and not message.tracked:
                    message.tracked = True
                    add_unacked(message)
                    on_message_in(message.tp, message.offset, message)
                events.append(event)
                if deadline is None:
                    deadline = loop.time() + timeout
            # skipped events are not acknowledged (Faust's own loop does): an offset of a
            # former generation in Faust's acknowledged list can be committed before the
            # events under it are read again
            if events:
                self.events_total += len(events)
                yield events
                generation = app.consumer_generation_id
                # the stream's reference; a stage may hold its own
                ack_events([e for e in events if e.message.generation_id == generation])
