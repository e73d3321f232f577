"""Replay a data set as a live ad stream: requests now, impressions now, clicks after a delay.

The wall-clock pacing (``rate`` requests/s) and the click delay are real time; the events carry
the data set's own event times (the click's is the request's plus the delay).
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from streams.producer import EventProducer
from streams.sources.movielens import AdEvent


@dataclass
class ReplayStats:
    requests: int = 0
    impressions: int = 0
    clicks: int = 0
    malformed: int = 0
    seconds: float = 0.0
    by_topic: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return self.requests + self.impressions + self.clicks + self.malformed


def replay(events: Iterable[AdEvent], producer: EventProducer, topics: dict[str, str],
           rate: float | None = None, click_delay: float = 0.0,
           malformed: Callable[[int], bytes | None] | None = None, malformed_every: int = 0,
           on_request: Callable[[int], None] | None = None, live: bool = False) -> ReplayStats:
    """Produce ``events`` in order. ``malformed_every=k`` mixes one bad request in every k.
    ``live``: stamp each event with the wall-clock time it is sent (history replayed as if it
    happened now, on the same clock as live traffic) instead of the data set's own time."""
    stats = ReplayStats()
    req_t, fb_t = topics["ad-requests"], topics["feedback"]
    pending: list[tuple[float, int, object]] = []  # (due, seq, click)
    start = time.monotonic()

    def flush_clicks(until: float) -> None:
        while pending and pending[0][0] <= until:
            _, _, click = heapq.heappop(pending)
            if live:
                click = dataclasses.replace(click, event_time=time.time())
            producer.send(fb_t, click.request_id, click)
            stats.clicks += 1

    for i, ev in enumerate(events):
        if rate:
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        now = time.monotonic()
        flush_clicks(now)
        request, impression = ev.request, ev.impression
        if live:
            wall = time.time()
            request = dataclasses.replace(request, event_time=wall)
            impression = dataclasses.replace(impression, event_time=wall)
        producer.send(req_t, request.id, request)
        producer.send(fb_t, impression.request_id, impression)
        stats.requests += 1
        stats.impressions += 1
        if ev.click is not None:
            heapq.heappush(pending, (now + click_delay, i, ev.click))
        if malformed and malformed_every and (i + 1) % malformed_every == 0:
            producer.send_raw(req_t, f"bad-{i}".encode(), malformed(i))
            stats.malformed += 1
        if on_request:
            on_request(1)
    while pending:  # wait for the last clicks to come due
        time.sleep(max(0.0, min(0.2, pending[0][0] - time.monotonic())))
        flush_clicks(time.monotonic())
    producer.flush()
    stats.seconds = time.monotonic() - start
    stats.by_topic = {req_t: stats.requests + stats.malformed,
                      fb_t: stats.impressions + stats.clicks}
    return stats


_BAD = (
    lambda i: b"{not json" + str(i).encode(),
    lambda i: b'{"id": "bad-%d", "event_time": 1, "user": {}, "candidates": [{"ad_id": "a"}]}' % i,
    lambda i: b'{"id": "bad-%d", "event_time": -5, "tenant": "t", "user": {},'
              b' "candidates": [{"ad_id": "a"}]}' % i,
    lambda i: b'{"id": "bad-%d", "event_time": 1, "tenant": "t", "user": {}, "candidates": []}' % i,
    lambda i: b'[1, 2, %d]' % i,
    lambda i: b'{"id": "bad-%d", "event_time": 1, "tenant": "t", "user": {"x": [1]},'
              b' "candidates": [{"ad_id": "a"}]}' % i,
    lambda i: b"\xff\xfe" + str(i).encode(),
)


def malformed_payload(i: int) -> bytes:
    """The i-th of a cycle of malformed requests (bad JSON, missing or wrong fields, bad bytes)."""
    return _BAD[i % len(_BAD)](i)


def run_replay(settings, limit: int | None = None, rate: float | None = None,
               click_delay: float = 0.0, extra_candidates: int = 0, malformed_every: int = 0,
               progress: bool = False, live: bool = False,
               on_request: Callable[[int], None] | None = None) -> ReplayStats:
    """Fetch MovieLens-100k if needed and replay it to the configured Kafka. ``on_request(1)``
    after each request is sent (besides the progress bar)."""
    from tqdm import tqdm

    from streams.contracts.topics import ensure_topics, topic_names
    from streams.sources import movielens

    ml = movielens.load(movielens.fetch(settings.data_dir))
    ensure_topics(settings)
    total = min(limit or len(ml.ratings), len(ml.ratings))
    events = movielens.ad_stream(ml, limit, extra_candidates, click_delay)
    producer = EventProducer(settings)
    with tqdm(total=total, unit="req", disable=not progress, desc="replay") as bar:
        def sent(n: int) -> None:
            bar.update(n)
            if on_request is not None:
                on_request(n)

        return replay(events, producer, topic_names(settings), rate, click_delay,
                      malformed_payload, malformed_every, on_request=sent, live=live)
