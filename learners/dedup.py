"""Exactly-once by example id, within a stated horizon, in bounded memory.

A model set remembers the ids it learned (as 64-bit hashes), oldest first, for ``horizon``
seconds after it learned them and at most ``capacity`` of them. By default the horizon is the
retention of the topics the trainer reads (7 days): Kafka can only deliver a message again
while it keeps it, so within the horizon every replay is recognised and skipped.

When the capacity forces an id out earlier, the *floor* rises to that example's event time:
from then on an example at or before the floor whose id is not remembered is **late**. It may
have been learned before, so it is not learned; the caller counts it and sends it to the dead
letters with the reason. So no id is ever learned twice, and none is dropped without a trace.
An id sent again after the horizon (not a replay: Kafka no longer holds the first) is new data.

Ids are 64-bit hashes (:func:`id_hash`); small numbers stand for them here:

>>> ids = LearnedIds(horizon=100.0, capacity=3)
>>> ids.classify([11, 12, 11], [10.0, 11.0, 10.0]).tolist()  # new, new, again in the batch
[0, 0, 1]
>>> ids.add([11, 12], [10.0, 11.0], now=1000.0)
>>> ids.classify([11, 13], [10.0, 12.0]).tolist()  # 11 learned already; 13 is new
[1, 0]
>>> ids.add([13, 14], [12.0, 13.0], now=1000.0)  # a fourth: the oldest (11, t=10) goes
>>> len(ids), ids.floor
(3, 10.0)
>>> ids.classify([11, 15], [10.0, 50.0]).tolist()  # 11 is late now; 15 is new
[2, 0]
>>> ids.add([16], [50.0], now=1150.0)  # 150 s later: the others are past the horizon
>>> len(ids), ids.floor  # forgotten by age: Kafka holds them no more; the floor stays
(1, 10.0)
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
from numba import njit

from .state import Persistent, persistent

NEW, DUPLICATE, LATE = 0, 1, 2


def id_hash(example_id: str) -> int:
    """A stable 64-bit hash of an example id (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(example_id.encode(), digest_size=8).digest(), "little")


@njit(cache=True)
def _slot(table, h):
    """The slot holding ``h``, or -1."""
    mask = np.uint64(table.shape[0] - 1)
    s = h & mask
    while table[s] != 0:
        if table[s] == h:
            return np.int64(s)
        s = (s + np.uint64(1)) & mask
    return np.int64(-1)


@njit(cache=True)
def _insert(table, hs):
    """Add each of ``hs`` not there yet; returns how many slots were taken."""
    mask = np.uint64(table.shape[0] - 1)
    added = 0
    for i in range(hs.shape[0]):
        h = hs[i]
        s = h & mask
        free = np.int64(-1)
        found = False
        while table[s] != 0:
            if table[s] == h:
                found = True
                break
            if table[s] == 1 and free < 0:
                free = np.int64(s)
            s = (s + np.uint64(1)) & mask
        if not found:
            if free >= 0:
                table[free] = h
            else:
                table[s] = h
                added += 1
    return added


@njit(cache=True)
def _delete(table, hs):
    for i in range(hs.shape[0]):
        s = _slot(table, hs[i])
        if s >= 0:
            table[s] = 1


@njit(cache=True)
def _classify(table, hs, ts, floor, out):
    # the batch's new ids so far, in a table of their own: an id again within the batch is a
    # duplicate of its first, whatever its time (a batch of the examples topic holds tens of
    # thousands of ids once the trainer has a backlog: a scan of those before each was
    # quadratic, and called a repeat at or before the floor late)
    size = 16
    while size < 2 * hs.shape[0]:
        size *= 2
    seen = np.zeros(size, dtype=np.uint64)
    for i in range(hs.shape[0]):
        h = hs[i]
        if _slot(table, h) >= 0 or _slot(seen, h) >= 0:
            out[i] = 1
        elif ts[i] <= floor:
            out[i] = 2
        else:
            out[i] = 0
            _insert(seen, hs[i:i + 1])


def _key(hashes) -> np.ndarray:
    """Hashes as table keys: 0 and 1 mark empty and deleted slots, so they move to 2 and 3."""
    h = np.asarray(hashes, dtype=np.uint64)
    return np.where(h < 2, h + np.uint64(2), h)


@persistent
class LearnedIds(Persistent):
    def __init__(self, horizon: float = 7 * 86400.0, capacity: int = 2_000_000):
        if horizon <= 0 or capacity <= 0:
            raise ValueError("horizon and capacity must be positive")
        self.horizon, self.capacity = float(horizon), int(capacity)
        self.floor = float("-inf")
        self._table = np.zeros(1024, dtype=np.uint64)
        self._used = 0  # live keys + tombstones
        self._h = np.zeros(0, dtype=np.uint64)  # remembered ids, in the order learned
        self._t = np.zeros(0, dtype=np.float64)  # their event times
        self._at = np.zeros(0, dtype=np.float64)  # when they were learned (wall clock)

    def __len__(self) -> int:
        return len(self._h)

    def __contains__(self, h: int) -> bool:
        return _slot(self._table, _key([h])[0]) >= 0

    def classify(self, hashes, times) -> np.ndarray:
        """Per id: 0 new, 1 learned already (or earlier in this batch), 2 late."""
        hs = _key(hashes)
        out = np.zeros(len(hs), dtype=np.int8)
        _classify(self._table, hs, np.asarray(times, dtype=np.float64), self.floor, out)
        return out

    def add(self, hashes, times, now: float | None = None) -> None:
        """Remember ids just learned (new ones: see :meth:`classify`), then forget those
        past the horizon or beyond the capacity."""
        hs, ts = _key(hashes), np.asarray(times, dtype=np.float64)
        now = time.time() if now is None else now
        if len(hs):
            self._grow(self._used + len(hs))
            self._used += _insert(self._table, hs)
            self._h = np.concatenate([self._h, hs])
            self._t = np.concatenate([self._t, ts])
            self._at = np.concatenate([self._at, np.full(len(hs), now)])
        self._forget(now)

    def _forget(self, now: float) -> None:
        aged = int(np.searchsorted(self._at, now - self.horizon, side="left"))
        full = max(len(self._h) - aged - self.capacity, 0)
        if full:  # forced out while Kafka may still hold them: refuse what is that old
            self.floor = max(self.floor, float(self._t[aged:aged + full].max()))
        n = aged + full
        if n:
            _delete(self._table, self._h[:n])
            self._h, self._t, self._at = (self._h[n:].copy(), self._t[n:].copy(),
                                          self._at[n:].copy())

    def _grow(self, need: int) -> None:
        size = len(self._table)
        if need * 2 <= size and self._used - len(self._h) < size // 4:
            return
        while need * 2 > size:
            size *= 2
        self._table = np.zeros(size, dtype=np.uint64)
        self._used = _insert(self._table, self._h)

    # -- state: the remembered ids in order; the table is rebuilt when read
    def to_state(self) -> dict:
        return {"horizon": self.horizon, "capacity": self.capacity, "floor": self.floor,
                "ids": self._h, "times": self._t, "learned_at": self._at}

    @classmethod
    def from_state(cls, s: dict) -> LearnedIds:
        out = cls(s["horizon"], s["capacity"])
        out.floor = float(s["floor"])
        hs = np.asarray(s["ids"], dtype=np.uint64)
        ts = np.asarray(s["times"], dtype=np.float64)
        at = np.asarray(s["learned_at"], dtype=np.float64)
        if not hs.shape == ts.shape == at.shape or hs.ndim != 1:
            raise ValueError("learned ids, times and learning times differ in shape")
        out._grow(len(hs))
        out._used = _insert(out._table, hs)
        out._h, out._t, out._at = hs.copy(), ts.copy(), at.copy()
        return out
