"""The serving bench's in-process cache rows: the request path timed with the caches hot and
after a sweep, as /recommend ranks (the same answer either way). Times are not asserted."""

from __future__ import annotations

import orjson

from ops.bench import serving
from streams.serving.snapshots import load_snapshot
from streams.state.model_sets import snapshot_of
from tests.helpers import BODY, KEY, trained_snapshot


def test_cache_rows_time_the_request_path_hot_and_cold(monkeypatch):
    monkeypatch.setattr(serving, "_l3_bytes", lambda: 1 << 20)  # a small sweep: a quick test
    snap = load_snapshot(snapshot_of(trained_snapshot(300), KEY), KEY)
    rows = serving.cache_rows(snap, "ensemble_stacking", [orjson.dumps(BODY)] * 4, passes=2)
    hot, cold, ratio = rows
    assert hot["step"].startswith("request path, caches hot")
    assert cold["step"].startswith("request path, caches cold")
    assert hot["ms_per_request"] > 0 and cold["ms_per_request"] > 0
    assert ratio["ratio"] == cold["ms_per_request"] / hot["ms_per_request"]


def test_the_last_level_cache_size_is_read_or_defaulted():
    assert serving._l3_bytes() >= 1 << 20
