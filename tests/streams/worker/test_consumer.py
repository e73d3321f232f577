"""The Faust driver's consumer: a fetch that overlapped a seek is not delivered (its records
are from the positions before the seek; delivered, Faust would count the offsets between the
committed one and them as a gap, acknowledged, and commit past events never read again)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.worker.consumer import Consumer


class Bare(Consumer):
    flow_active = True  # (Faust's property reads the app's flow control)

    def __init__(self):  # none of Faust's service machinery: only what the method reads
        self.app = SimpleNamespace(consumer_generation_id=1)


def test_a_fetch_that_overlapped_a_seek_is_dropped(monkeypatch):
    c = Bare()
    calls = []

    async def fetch(self, timeout):
        calls.append(timeout)
        if len(calls) == 1:  # the group rebalanced and Faust sought back meanwhile
            self._seeks += 2
        return {"tp": ["stale record"]}, {"tp"}

    monkeypatch.setattr(faust_aiokafka.Consumer, "_wait_next_records", fetch)

    async def run():
        first = await c._wait_next_records(1.0)
        second = await c._wait_next_records(1.0)  # the prefetch it started
        c._prefetch = None
        return first, second

    first, second = asyncio.run(run())
    assert first == ({}, {"tp"})  # dropped: read again from the committed offset
    assert second == ({"tp": ["stale record"]}, {"tp"})  # a fetch with no seek across it


def test_a_fetch_across_a_rebalance_is_dropped(monkeypatch):
    """A fetch begun in one generation and answered in the next: its records are from the
    positions before the rebalance, whatever generation they would be tagged with now."""
    c = Bare()

    async def fetch(self, timeout):
        self.app.consumer_generation_id += 1  # the group rebalanced during the fetch
        return {"tp": ["stale record"]}, {"tp"}

    monkeypatch.setattr(faust_aiokafka.Consumer, "_wait_next_records", fetch)
    assert asyncio.run(c._wait_next_records(1.0)) == ({}, {"tp"})
