"""The MovieLens-100k click stream as the pipeline makes it: ratings replayed as requests,
impressions and clicks, joined in-process by the same :class:`streams.join.joiner.Joiner`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from streams.contracts.events import TrainingExample
from streams.join.joiner import Joiner
from streams.sources import movielens


def click_stream(data_dir: Path, limit: int | None = None, window: float = 1800.0,
                 order: str = "request") -> list[TrainingExample]:
    ml = movielens.load(movielens.fetch(data_dir))
    return join_events(movielens.ad_stream(ml, limit), Joiner(window, order))


def join_events(events: Iterable[movielens.AdEvent], j: Joiner) -> list[TrainingExample]:
    """Each ad event's request, impression and click (if any) through ``j``, in that order,
    then every window closed: the examples, as the worker's join makes them."""
    out: list[TrainingExample] = []
    for ev in events:
        out += j.on_request(ev.request)
        out += j.on_feedback(ev.impression)
        if ev.click is not None:
            out += j.on_feedback(ev.click)
        out += j.advance()
    return out + j.flush()
