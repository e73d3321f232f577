"""MovieLens-100k from the recbole wheel: the real ratings, time-ordered, as ad events."""

from streams.sources import movielens


def test_files_and_counts(movielens_dir):
    ml = movielens.load(movielens_dir)
    assert len(ml.ratings) == 100_000 and len(ml.users) == 943 and len(ml.items) == 1682
    times = [r.timestamp for r in ml.ratings]
    assert times == sorted(times)
    clicks = sum(r.rating >= 4 for r in ml.ratings) / len(ml.ratings)
    assert abs(clicks - 0.554) < 0.001


def test_ad_stream_shape(movielens_dir):
    ml = movielens.load(movielens_dir)
    evs = list(movielens.ad_stream(ml, 500, extra_candidates=3, click_delay=60))
    assert len(evs) == 500 and len({e.request.id for e in evs}) == 500
    first = evs[0]
    r0 = ml.ratings[0]
    assert first.request.candidates[0].ad_id == r0.item_id
    assert first.request.user["user_id"] == r0.user_id and first.request.user["gender"] in "MF"
    assert 2 <= len(first.request.candidates) <= 4
    assert first.impression.kind == "impression" and first.impression.ad_id == r0.item_id
    for e, r in zip(evs, ml.ratings, strict=False):
        assert (e.click is not None) == (r.rating >= 4)
        if e.click:
            assert e.click.event_time == e.request.event_time + 60


class Recorder:
    """A producer that keeps what it is given."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key, event):
        self.sent.append((topic, event))

    def send_raw(self, topic, key, value):
        self.sent.append((topic, value))

    def flush(self, timeout=None):
        return 0


def test_live_replay_stamps_events_with_the_present(movielens_dir):
    import time

    from streams.sources.replay import replay

    ml = movielens.load(movielens_dir)
    topics = {"ad-requests": "req", "feedback": "fb"}
    rec, t0 = Recorder(), time.time()
    stats = replay(movielens.ad_stream(ml, 200), rec, topics, click_delay=0.05, live=True)
    times = [e.event_time for _, e in rec.sent]
    assert stats.requests == 200 and stats.clicks > 0
    assert all(t0 <= t <= time.time() for t in times)
    reqs = {e.id: e.event_time for topic, e in rec.sent if topic == "req"}
    clicks = [e for topic, e in rec.sent if topic == "fb" and e.kind == "click"]
    # at least the delay after its request (monotonic clock vs wall clock: a millisecond)
    assert all(c.event_time >= reqs[c.request_id] + 0.049 for c in clicks)
    hist = Recorder()
    replay(movielens.ad_stream(ml, 5), hist, topics)
    assert all(e.event_time < 1e9 for _, e in hist.sent)  # the data set's own times (1997-98)
