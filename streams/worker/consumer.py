"""Faust's aiokafka consumer without its per-message task churn, and without losing the
records it fetched but did not deliver: the app's transport driver (``aimass://`` broker
URLs, registered under the ``faust.transports`` entry point).

**Per-message cost.** Faust's drain loop (``faust/transport/consumer.py``,
``Consumer._drain_messages``) delivers every message with ``await
self.wait_first(callback(message), self.suspend_flow.wait())``: mode's ``Service.wait_first``
wraps both awaitables in tasks, waits on them and cancels the loser, several task creations
per message; on this machine about 40% of a do-nothing agent's time. The race matters for
one case: a delivery that has to wait (a full stream buffer) must give up when a rebalance
suspends flow. :func:`deliver` steps the delivery coroutine eagerly: almost always it
finishes without waiting and no task is made; only a delivery that does wait is raced
against the suspension, as Faust does. One fetch is always in flight meanwhile
(:meth:`Consumer._next_fetch`).

**Nothing fetched is dropped silently.** aiokafka's position is past every record it returned
(:mod:`streams.worker.fetch`). Faust's loop stops delivering a batch when a rebalance begins
or the generation changes, and its ``getmany`` breaks off the same way; the records left are
gone from that assignment, and the next delivered record looks to Faust like a gap after the
last one it read (``_add_gap``), which it counts as acknowledged and commits past. That lost
60 to 250 requests per partition in the second-worker chaos test (a contiguous range starting
at the offset let go at revocation). Here every record not delivered is given back: its
partition is rewound to it (:func:`undelivered`, :meth:`Consumer._give_back`) while its
assignment is current; a seek made since (:meth:`Consumer.perform_seek`) or a new
assignment (which starts from the committed offsets) supersedes the rewind. Fetches, seeks
and rewinds take turns (one lock), so none of them crosses another.

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
import logging
from collections.abc import Coroutine
from typing import Any, cast

from faust.transport import producer as faust_producer
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from streams.worker.acks import BatchAcks
from streams.worker.conductor import Conductor
from streams.worker.fetch import ConsumerThread, Fetched

logger = logging.getLogger(__name__)


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
            # shielded: mode's wait_first cancels what did not finish, and the delivery's
            # own future, cancelled, would raise into it instead of letting it be closed
            await wait_first(asyncio.shield(waiting), suspend.wait())
            if not waiting.done():  # suspended first: give up the delivery
                coro.close()
                return False
        try:
            waiting = coro.send(None)
        except StopIteration:
            return True


def undelivered(records: dict, delivered: dict) -> dict:
    """Per partition, the offset of the first record of a batch not delivered (the batch
    in fetch order; ``delivered``: the last offset delivered per partition).

    >>> from types import SimpleNamespace as R
    >>> batch = {"a": [R(offset=5), R(offset=6), R(offset=7)], "b": [R(offset=9)]}
    >>> undelivered(batch, {"a": 6})
    {'a': 7, 'b': 9}
    >>> undelivered(batch, {"a": 7, "b": 9})
    {}
    """
    out = {}
    for tp, batch in records.items():
        last = delivered.get(tp)
        for record in batch:
            if last is None or record.offset > last:
                out[tp] = record.offset
                break
    return out


class Consumer(BatchAcks, faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the eager delivery of :func:`deliver`, one fetch always
    in flight, undelivered records given back (:meth:`_give_back`), and a batch of events
    acknowledged in one pass (:mod:`streams.worker.acks`)."""

    _next: asyncio.Task | None = None  # the fetch started while the last batch is delivered
    _turns: asyncio.Lock | None = None  # fetches, seeks and rewinds, one at a time
    _seeks: int = 0  # seeks done: a fetch made before one is superseded by it

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def last_poll(self, tp) -> float | None:
        """When the broker last answered a fetch for ``tp`` (``time.time()`` seconds): its
        :meth:`highwater` is that fresh. None before the first answer, or if ``tp`` is not
        assigned. A highwater read during a rebalance or a broker outage is old news; the
        join asks this before it takes "read to the end" for "nothing more is coming"."""
        return cast(ConsumerThread, self._thread).last_poll(tp)

    def _lock(self) -> asyncio.Lock:
        if self._turns is None:
            self._turns = asyncio.Lock()
        return self._turns

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, between fetches: a fetch made before it
        is from the old positions and is not delivered (nor given back: the seek decides)."""
        async with self._lock():
            self._seeks += 1
            await super().perform_seek()

    async def on_partitions_assigned(self, assigned, generation_id: int = 0) -> None:
        """Faust's, with the read offsets of the assigned partitions forgotten: a new
        assignment reads from the committed offsets, and a read offset left from before
        would make Faust drop records under it as duplicates, or call those above it a gap."""
        for tp in assigned:
            self._read_offset[tp] = None
        await super().on_partitions_assigned(assigned, generation_id)

    async def _add_gap(self, tp, offset_from: int, offset_to: int) -> None:
        """Faust's gap record (offsets missing between two records read), logged: on a topic
        that is not compacted a gap means records were skipped, and Faust commits past it."""
        logger.warning("offsets %d..%d of %s missing between records read (a gap Faust "
                       "commits past)", offset_from, offset_to - 1, tp)
        await super()._add_gap(tp, offset_from, offset_to)

    async def _fetch(self, timeout: float):
        """One fetch, between seeks and rewinds: (records, active partitions, seeks done
        before it). Waits for flow first, as Faust's ``_wait_next_records`` does."""
        if not self.flow_active:
            await self.wait(self.can_resume_flow)
        async with self._lock():
            seeks = self._seeks
            active = None if self.app.client_only else self._get_active_partitions()
            if active is None or active:
                records = await self._getmany(active_partitions=active, timeout=timeout)
                return records, active, seeks
        await self.sleep(1)  # nothing assigned: as Faust, still let the loop run
        return Fetched(), active, seeks

    async def _next_fetch(self, timeout: float):
        """The fetch already in flight, or a new one; when it brought records the next one
        starts at once, so that the consumer thread fetches while the loop delivers."""
        task, self._next = self._next, None
        result = await (task if task is not None else self._fetch(timeout))
        if result[0] and self.flow_active:
            self._next = asyncio.ensure_future(self._fetch(timeout))
        return result

    async def _give_back(self, records, offsets: dict, seeks: int) -> None:
        """Rewind ``offsets`` (records of ``records`` not delivered), unless a seek came since
        the fetch or its assignment is gone. The fetch in flight is taken in first: its records
        are past the ones given back, and would be read twice, or for other partitions, lost."""
        task, self._next = self._next, None
        if task is not None:
            later, _, later_seeks = await task
            if later and later_seeks == seeks and later.assignment is records.assignment:
                offsets = {**undelivered(later, {}), **offsets}
            elif later and later_seeks == self._seeks:  # its own assignment: give it back
                await self._give_back(later, undelivered(later, {}), later_seeks)
        if not offsets:
            return
        async with self._lock():
            done = seeks == self._seeks and await cast(ConsumerThread, self._thread).rewind(
                records.assignment, offsets)
        if not done:
            logger.info("%d partition(s) not rewound: a seek or a new assignment (from the "
                        "committed offsets) came since their fetch", len(offsets))

    async def _deliver_batch(self, records, active, seeks: int) -> dict:
        """Deliver a fetched batch while flow lasts: the last offset delivered per partition.
        What ``getmany`` checks per record is checked per record: flow active, the generation
        and seeks unchanged, the partition active (or buffered)."""
        app, callback, suspend, wait_first = self.app, self.callback, self.suspend_flow, \
            self.wait_first
        get_read_offset, set_read_offset = self._read_offset.__getitem__, \
            self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for, to_message = app.topics.acks_enabled_for, self._to_message
        buffered, generation = self._buffered_partitions, app.consumer_generation_id
        conductor = app.topics
        put_now = conductor.put_now if isinstance(conductor, Conductor) else (lambda tp: None)
        delivered: dict = {}
        since_yield = 0
        for tp in records:
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or app.consumer_generation_id != generation \
                    or self._seeks != seeks:
                break  # a rebalance or a seek began: the rest is given back or read again
            if active is not None and tp not in active and tp not in buffered:
                continue  # paused since the fetch: given back
            message = to_message(tp, record)
            since_yield += 1
            if since_yield > 100:
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            r_offset = get_read_offset(tp)
            if r_offset is not None and offset < r_offset:
                delivered[tp] = offset  # read before a seek back: Faust drops it too
                continue
            gap = offset - (r_offset or 0)
            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            if suspend.is_set():  # rebalancing: Faust's own race
                delivery = callback(message)
                ok = delivery in (await wait_first(delivery, suspend.wait())).done
            elif (put := put_now(tp)) is not None and put(message):
                ok = True  # delivered with nothing to wait for (streams.worker.conductor)
            else:
                ok = await deliver(callback(message), suspend, wait_first)
            if not ok or app.consumer_generation_id != generation:
                break
            delivered[tp] = offset
            set_read_offset(tp, offset)
        return delivered

    async def _drain_once(self) -> None:
        """One turn of the drain loop: fetch, deliver (:meth:`_deliver_batch`), give back
        what was not delivered (:meth:`_give_back`)."""
        records, active, seeks = await self._next_fetch(1.0)
        await self.sleep(0)
        if not records or self.should_stop:
            return
        delivered = {}
        if self.flow_active and seeks == self._seeks:
            delivered = await self._deliver_batch(records, active, seeks)
        left = undelivered(records, delivered)
        if left:
            await self._give_back(records, left, seeks)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's drain loop, one :meth:`_drain_once` per turn."""
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                await self._drain_once()
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
            if self._next is not None:
                self._next.cancel()
                self._next = None


class ProducerBuffer(faust_producer.ProducerBuffer):
    """Faust's producer buffer, its ``size`` without a settings lookup. Faust's conductor
    awaits ``wait_until_ebb`` for every message it receives, and Faust's ``size`` reads
    ``app.conf.producer_threaded`` (a settings descriptor) each time: 2.7% of a worker's main
    thread under py-spy. The setting is read once, when the producer attaches the buffer.

    >>> b = ProducerBuffer()
    >>> b.pending.put_nowait("m")
    >>> b.size
    1
    """

    threaded = False  # app.conf.producer_threaded, set by :class:`Producer`

    def ebbed(self) -> bool:
        """Would ``wait_until_ebb`` return without waiting?"""
        return self.size <= self.max_messages

    @property
    def size(self) -> int:
        if self.threaded:
            return self.queue.qsize() if self.queue is not None else 0
        return self.pending.qsize()


class Producer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with :class:`ProducerBuffer`, attached as Faust attaches
    its own (``faust.transport.producer.Producer.__init__``)."""

    def __init__(self, transport, loop=None, **kwargs) -> None:
        super().__init__(transport, loop=loop, **kwargs)
        buffer = ProducerBuffer(loop=self.loop, beacon=self.beacon)
        buffer.threaded = bool(self.app.conf.producer_threaded)
        if buffer.threaded:
            buffer.threaded_producer = self.threaded_producer
        buffer.app = self.app
        self.buffer = buffer  # Faust's, never started, is let go


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer`, :class:`Producer` and
    :class:`streams.worker.conductor.Conductor`."""

    Consumer = Consumer
    Producer = Producer
    Conductor = Conductor
