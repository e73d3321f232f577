"""What each step of the worker's stages costs per event, in-process, on the MovieLens stream:
no Kafka, no ClickHouse, no Faust. The steps the worker runs per batch, in batches as it cuts
them; each timed alone, best of ``--repeat`` (the machine's speed drifts between runs here, and
the least disturbed run is the cost of the code).

    python -m ops.bench.stages [--examples 20000] [--json PATH]

Rows: ``us_per_unit`` (µs per request, feedback event or example as named), ``units``.
``learn`` is a tenant's model set learning (predict, then learn; the members and combiners of
``--models`` and ``--ensembles``), as the trainer runs it.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from ops.bench.common import print_table, write_json
from ops.bench.movielens_stream import join_events

BATCH = 2000  # events per batch, as the worker takes them (AIMASS_BATCH_SIZE)
SCORED = 800  # requests per score batch: the requests of a batch of events


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=20_000)
    p.add_argument("--models", default="ftrl")
    p.add_argument("--ensembles", default="average,weighted,vote,stacking")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    from learners import registry
    from streams.contracts import batches
    from streams.contracts.events import AdRequest, Feedback, encode
    from streams.contracts.example_batches import encode_examples
    from streams.contracts.features import DEFAULT_CROSSES
    from streams.join.joiner import Joiner
    from streams.serving.ranking import Ranker
    from streams.serving.snapshots import ModelStore, load_snapshot
    from streams.settings import Settings
    from streams.sources import movielens
    from streams.state.model_sets import snapshot_of
    from streams.training.model_set import ModelSet
    from streams.training.trainer import ensemble_factory

    s = Settings(models=args.models, ensembles=args.ensembles)
    ml = movielens.load(movielens.fetch(s.cache_dir.parent))
    evs = list(movielens.ad_stream(ml, args.examples))
    reqs = [e.request for e in evs]
    fbs = [e.impression for e in evs] + [e.click for e in evs if e.click]
    n, nf = len(reqs), len(fbs)

    def raws(records):
        return [batches.Raw(encode(r), None, [], "t", 0, i) for i, r in enumerate(records)]

    req_raw, fb_raw = raws(reqs), raws(fbs)
    now = time.time()

    def join():  # tracking requests, as the worker's join does for its merge
        return join_events(evs, Joiner(s.join_window, "request", track_requests=True))

    exs = join()
    tenant = reqs[0].tenant

    def model_set() -> ModelSet:
        return ModelSet(tenant, registry.build(s.model_names, DEFAULT_CROSSES, "cpu"),
                        ensembles=ensemble_factory(s)())

    trained = model_set()
    trained.process(exs[:n // 4])
    key = b"bench"
    store = ModelStore()
    store.swap(load_snapshot(snapshot_of(trained, key), key))
    ranker = Ranker(store, s.serving_model, served_by="worker")
    recs = ranker.rank_many(reqs[:SCORED])
    chunks = range(0, n, BATCH)

    def learn():
        ms = model_set()
        for i in range(0, n, 500):  # the trainer's batches: a few examples records
            ms.process(exs[i:i + 500])

    steps = [
        ("decode requests", n, lambda: [batches.decode_batch_indexed(
            AdRequest, req_raw[i:i + BATCH], now) for i in chunks]),
        ("decode feedback", nf, lambda: [batches.decode_batch_indexed(
            Feedback, fb_raw[i:i + BATCH], now) for i in range(0, nf, BATCH)]),
        ("request rows", n, lambda: [batches.request_rows(reqs[i:i + BATCH], int(now))
                                     for i in chunks]),
        ("feedback rows", nf, lambda: [batches.feedback_rows(fbs[i:i + BATCH], int(now))
                                       for i in range(0, nf, BATCH)]),
        ("join (per example)", n, join),
        ("encode examples", n, lambda: [encode_examples(exs[i:i + BATCH]) for i in chunks]),
        ("rank requests", n, lambda: [ranker.rank_many(reqs[i:i + SCORED])
                                      for i in range(0, n, SCORED)]),
        ("encode recommendations", len(recs), lambda: [encode(r) for r in recs]),
        ("learn (per example)", n, learn),
    ]
    rows = []
    for name, units, fn in steps:
        fn()  # warm: compiled kernels loaded, memos filled
        secs = _best(fn, args.repeat)
        rows.append({"step": name, "units": units, "us_per_unit": secs * 1e6 / units})
    print_table(rows, ["step", "units", "us_per_unit"])
    write_json(args.json, rows, examples=n, models=args.models, ensembles=args.ensembles)


if __name__ == "__main__":
    main()
