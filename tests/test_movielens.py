"""MovieLens-100k from the recbole wheel: the real ratings, time-ordered, as ad events."""

from streams import movielens


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
