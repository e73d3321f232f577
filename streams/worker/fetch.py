"""The consumer thread's side of the driver: fetches that say which assignment they are of,
and the rewind that gives undelivered records back.

aiokafka keeps a position per assigned partition, and moves it past every record it returns
from ``fetched_records``: a record returned is consumed, as far as aiokafka knows. It returns
records of the assignment current when it returns them, never of an older one (its
``FetchResult.check_assignment``); each rebalance makes a new assignment whose positions
start again at the committed offsets. So a record Faust's side does not deliver (flow
stopped by a rebalance mid-batch, a delivery given up) is lost unless the position is put
back to it, and putting it back is right only while the assignment it came from is still the
current one: a new assignment starts from the committed offsets by itself.

:class:`Fetched` carries the assignment with the records; :meth:`ConsumerThread.rewind`
seeks back only if that assignment is still current, checked and done in the consumer's own
thread with no wait between, so no rebalance can come between the check and the seek.

>>> batch = Fetched({"tp": [1, 2]})
>>> batch.assignment = "assignment 7"
>>> dict(batch), batch.assignment
({'tp': [1, 2]}, 'assignment 7')
"""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

logger = logging.getLogger(__name__)

FETCH_MAX_WAIT_MS = 50


class Fetched(dict):
    """Records by partition, as aiokafka returned them, and the aiokafka assignment they are
    of (None for an empty fetch)."""

    __slots__ = ("assignment",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.assignment = None


def current_assignment(consumer: Any) -> Any:
    """The aiokafka consumer's current assignment object (a new one per rebalance)."""
    subscription = consumer._subscription.subscription  # aiokafka's own state: no accessor
    return None if subscription is None else subscription.assignment


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with a short broker-side fetch wait, fair fetches
    across partitions, fetches tagged with their assignment (:class:`Fetched`), and
    :meth:`rewind`.

    aiokafka keeps one fetch request in flight per broker, for the partitions that have no
    records buffered. Faust asks the broker to hold a fetch up to 1.5 s for data. A request
    made only of partitions with nothing new (the assignor's leader topic, which never has
    a message; a topic nobody produces to now) is held that long, and every partition whose
    buffer empties meanwhile waits behind it: measured here, fetches of 1.5 s between bursts
    of 100k-event/s ones. Held 50 ms at most, an idle partition costs a small request 20
    times a second and delays the others by no more than that."""

    _turn = 0

    def last_poll(self, tp) -> float | None:
        consumer = self._ensure_consumer()
        if tp not in consumer.assignment():
            return None
        ms = consumer.last_poll_timestamp(tp)
        return None if ms is None else ms / 1000.0

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # a constructor argument aiokafka keeps as given; Faust passes 1500 and has no setting
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def rewind(self, assignment: Any, offsets: dict) -> bool:
        """Seek each partition back to its offset if ``assignment`` is still the current
        one; False (nothing done) if a rebalance replaced it."""
        return await self.call_thread(self._rewind, assignment, offsets)

    async def _rewind(self, assignment: Any, offsets: dict) -> bool:
        consumer = self._ensure_consumer()
        if assignment is None or current_assignment(consumer) is not assignment \
                or not assignment.active:
            return False
        for tp, offset in offsets.items():
            if tp in assignment.tps:
                consumer.seek(tp, offset)
        logger.info("rewound %d partition(s) to records not delivered: %s", len(offsets),
                    ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in offsets.items()))
        return True

    async def _fetch_records(self, consumer, active_partitions, timeout=None,
                             max_records=None) -> Fetched:
        """Faust's method, fair across partitions, its records tagged with their assignment.

        aiokafka's ``fetched_records`` drains its buffers in the order they were filled and
        stops at ``max_records``: a partition with a backlog stays first and takes every
        call, and the others starve. Here the records partition after partition get their
        share, then what is left goes to those that have more; a trainer reading the
        examples topic learned nothing until the requests and feedback it shares the
        consumer with ran out (20 s here), and learned as they came with this. Should a
        rebalance come between two of these calls, what the earlier ones returned is of an
        assignment that is gone (the new one starts from the committed offsets): dropped."""
        out = Fetched()
        if not self.consumer.flow_active:
            return out
        fetcher = consumer._fetcher  # as Faust's own _fetch_records reads it
        if consumer._closed or fetcher._closed:
            raise faust_aiokafka.ConsumerStoppedError()
        tps = list(active_partitions or ())
        if len(tps) > 1 and max_records:
            self._turn = (self._turn + 1) % len(tps)
            tps = tps[self._turn:] + tps[:self._turn]
            share = max(max_records // len(tps), 1)
            left = max_records
            with fetcher._subscriptions.fetch_context():
                for limit in (share, max_records):  # each its share, then the rest
                    for tp in tps:
                        if left <= 0:
                            break
                        got = await fetcher.fetched_records({tp}, timeout=0,
                                                            max_records=min(limit, left))
                        assignment = current_assignment(consumer)
                        if assignment is not out.assignment:
                            out.clear()  # of an assignment a rebalance ended
                            out.assignment, left = assignment, max_records
                        for t, records in got.items():
                            out.setdefault(t, []).extend(records)
                            left -= len(records)
            if out:
                return out
        got = await super()._fetch_records(consumer, active_partitions, timeout, max_records)
        out = Fetched(got)
        out.assignment = current_assignment(consumer)  # no wait since aiokafka returned
        return out
