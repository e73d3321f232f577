"""Rows written behind the stages gather into one insert per table: until ``min_rows`` rows
have gathered or the oldest has waited ``max_seconds``; each write's future is done once its
rows are in; a failed insert fails its rows' futures and the next write."""

from __future__ import annotations

import asyncio

import pytest

from sinks import schema
from streams.worker.write_behind import WriteBehind


class Writer:
    def __init__(self, fail: bool = False):
        self.inserts: list[tuple[str, int, float]] = []  # (table, rows, loop time)
        self.fail = fail

    async def __call__(self, table, rows):
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("ClickHouse away")
        self.inserts.append((table.name, len(rows), asyncio.get_running_loop().time()))


def rows(n: int) -> list[dict]:
    return [{"i": i} for i in range(n)]


def test_small_batches_gather_into_one_insert_per_table_within_max_seconds():
    w = Writer()
    behind = WriteBehind(w, min_rows=1000, max_seconds=0.2)

    async def run():
        t0 = asyncio.get_running_loop().time()
        for _ in range(5):
            await behind.write(schema.PREDICTIONS, rows(100))
            await behind.write(schema.FEEDBACK, rows(10))
        assert w.inserts == []  # nothing yet: neither full nor old enough
        await behind.drain()
        return t0

    t0 = asyncio.run(run())
    assert sorted((t, n) for t, n, _ in w.inserts) == [("feedback", 50), ("predictions", 500)]
    assert all(0.15 <= at - t0 < 1.0 for _, _, at in w.inserts)


def test_a_full_table_is_inserted_at_once():
    w = Writer()
    behind = WriteBehind(w, min_rows=300, max_seconds=30.0)

    async def run():
        for _ in range(3):
            await behind.write(schema.PREDICTIONS, rows(100))
        await asyncio.wait_for(behind.drain(), 2.0)  # not 30 s: 300 rows fill it

    asyncio.run(run())
    assert [(t, n) for t, n, _ in w.inserts] == [("predictions", 300)]


def test_a_drained_input_has_its_rows_inserted_at_once():
    w = Writer()
    behind = WriteBehind(w, min_rows=1000, max_seconds=30.0)

    async def run():
        await behind.write(schema.PREDICTIONS, rows(100))
        await behind.write(schema.FEEDBACK, rows(10))
        await asyncio.sleep(0.05)
        assert w.inserts == []  # gathering: neither full nor old enough
        behind.flush()
        await asyncio.wait_for(behind.drain(), 2.0)  # not 30 s

    asyncio.run(run())
    assert sorted((t, n) for t, n, _ in w.inserts) == [("feedback", 10), ("predictions", 100)]


def test_drain_waits_for_the_rows_written_before_it_not_after():
    w = Writer()
    behind = WriteBehind(w, min_rows=100, max_seconds=30.0)

    async def run():
        await behind.write(schema.PREDICTIONS, rows(100))  # full: inserted at once
        draining = asyncio.ensure_future(behind.drain())
        await asyncio.sleep(0)
        await behind.write(schema.PREDICTIONS, rows(30))  # gathers for 30 s
        await asyncio.wait_for(draining, 2.0)
        assert [n for _, n, _ in w.inserts] == [100]
        behind.flush()
        await asyncio.wait_for(behind.drain(), 2.0)

    asyncio.run(run())
    assert [n for _, n, _ in w.inserts] == [100, 30]


def test_rows_written_during_an_insert_gather_into_the_next():
    w = Writer()
    behind = WriteBehind(w, min_rows=100, max_seconds=0.05)

    async def run():
        await behind.write(schema.PREDICTIONS, rows(100))
        first = behind.take()
        await asyncio.sleep(0)  # the insert of the first 100 has started
        await behind.write(schema.PREDICTIONS, rows(30))
        await asyncio.gather(*first)
        await behind.drain()

    asyncio.run(run())
    assert [n for _, n, _ in w.inserts] == [100, 30]


def test_a_failed_insert_fails_its_rows_and_the_next_write():
    behind = WriteBehind(Writer(fail=True), min_rows=10, max_seconds=0.0)

    async def run():
        await behind.write(schema.PREDICTIONS, rows(10))
        with pytest.raises(ConnectionError):
            await behind.drain()
        with pytest.raises(ConnectionError):
            await behind.write(schema.PREDICTIONS, rows(1))

    asyncio.run(run())


def test_bounds_are_checked():
    with pytest.raises(ValueError, match="min_rows"):
        WriteBehind(Writer(), min_rows=0)
    with pytest.raises(ValueError, match="min_rows"):
        WriteBehind(Writer(), min_rows=200_000)
    with pytest.raises(ValueError, match="max_seconds"):
        WriteBehind(Writer(), max_seconds=-1.0)
