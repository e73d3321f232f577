"""Faust's aiokafka consumer without its per-message task churn: the app's transport driver
(``aimass://`` broker URLs, registered under the ``faust.transports`` entry point).

Faust's drain loop (``faust/transport/consumer.py``, ``Consumer._drain_messages``) delivers
every message with ``await self.wait_first(callback(message), self.suspend_flow.wait())``:
mode's ``Service.wait_first`` wraps both awaitables in tasks, waits on them and cancels the
loser, several task creations per message. On this machine that was about 40% of a do-nothing
agent's time. The race exists for one case: a delivery that has to wait (a full stream
buffer, flow control while the group rebalances) must give up when flow is suspended, so that
messages of revoked partitions are not delivered.

:meth:`Consumer._drain_messages` keeps that semantics and drops the churn: it steps the
delivery coroutine eagerly (:func:`deliver`). Almost always it finishes without waiting, and
no task is made; only a delivery that does wait falls back to racing it against the
suspension, exactly as Faust does. Everything else of the loop is Faust's: read offsets, gap
tracking for acks, commit every N, yielding to the loop every 100 messages.

>>> import asyncio
>>> async def quick():
...     return 1
>>> async def demo():
...     suspend = asyncio.Event()
...     return await deliver(quick(), suspend, None)
>>> asyncio.run(demo())
True
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service


async def deliver(coro: Coroutine, suspend: asyncio.Event, wait_first) -> bool:
    """Run ``coro`` to its end; True if it finished, False if flow was suspended while it
    waited (it is then closed: the message is not delivered, as in Faust)."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return True
    while True:  # the slow path: the delivery waits on a future
        if waiting is None:  # a bare yield (asyncio.sleep(0))
            await asyncio.sleep(0)
        elif not waiting.done():
            await wait_first(waiting, suspend.wait())
            if not waiting.done():  # suspended first: give up the delivery
                coro.close()
                return False
        try:
            waiting = coro.send(None)
        except StopIteration:
            return True


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the eager delivery of :func:`deliver`."""

    async def _drain_messages(self, fetcher: Any) -> None:  # noqa: C901 - Faust's loop
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspend, wait_first = self.suspend_flow, self.wait_first
        yield_every, since_yield = 100, 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        since_yield += 1
                        if since_yield > yield_every:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if suspend.is_set():  # rebalancing: Faust's own race
                                await wait_first(callback(message), suspend.wait())
                            else:
                                await deliver(callback(message), suspend, wait_first)
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer`."""

    Consumer = Consumer
