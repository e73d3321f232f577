"""/recommend latency and throughput at fixed offered loads (open loop), 100 candidates per
request, beside a no-op endpoint of the same server stack (it parses the same body) in the same
run, while a trainer learns from a MovieLens replay on the same machine.

    python -m ops.bench.serving [--rates 200,500,1000] [--duration 30] [--no-trainer]
                                [--trainer-nice N] [--loadgen go|python] [--backends kafka]
                                [--replicas 1,2] [--deadline-ms MS] [--json PATH]
    python -m ops.bench.serving --in-process [--json PATH]   # each step's cost, no HTTP
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import orjson

from ensemble import build_combiner
from learners import registry
from ops.harness import WorkerProcess, machine_cpu_seconds
from streams.contracts.features import DEFAULT_CROSSES
from streams.contracts.topics import ensure_topics
from streams.sources import movielens
from streams.sources.replay import run_replay
from streams.state.model_sets import snapshot_of
from streams.state.model_updates import SnapshotPublisher
from streams.state.statefile import load_key
from streams.training.model_set import ModelSet

from .common import backend, parser, print_table, write_json
from .loadgen import go_binary, go_load, in_process
from .movielens_stream import click_stream


def bodies(data_dir: Path, n: int = 200, candidates: int = 100) -> list[bytes]:
    ml = movielens.load(movielens.fetch(data_dir))
    items = sorted(ml.items)
    users = sorted(ml.users)
    out = []
    for i in range(n):
        cands = items[(i * 37) % (len(items) - candidates):][:candidates]
        out.append(orjson.dumps({
            "tenant": "movielens", "user": ml.user_features(users[i % len(users)]),
            "context": {"hour": i % 24},
            "candidates": [{"ad_id": c, "features": ml.item_features(c)} for c in cands]}))
    return out


def trained(s, data_dir: Path, n: int) -> ModelSet:
    """The default model set, trained on the first ``n`` examples of the click stream."""
    ms = ModelSet("movielens", registry.build(s.model_names, DEFAULT_CROSSES, s.device),
                  ensembles={e: build_combiner(e) for e in s.ensemble_names})
    exs = click_stream(data_dir, n)
    for i in range(0, len(exs), 2000):
        ms.process(exs[i:i + 2000])
    return ms


def publish_trained(s, data_dir: Path, n: int) -> str:
    ms = trained(s, data_dir, n)
    SnapshotPublisher(s).publish("movielens", snapshot_of(ms, load_key(s)))
    return f"movielens:v{ms.version}"


def in_process_costs(s, data_dir: Path, n_train: int, payloads: list[bytes]) -> list[dict]:
    """Milliseconds per 100-candidate request for each step of /recommend's work, without
    HTTP, against the merged-dict path (each candidate's own feature dict, hashed per model)
    in the same run. Best of 5 passes over the request bodies."""
    import time

    import numpy as np

    from learners.hashing import FeatureHasher
    from streams.contracts.events import AdRequest, parse_object
    from streams.contracts.features import pair_features, request_features
    from streams.serving.snapshots import load_snapshot

    ms = trained(s, data_dir, n_train)
    key = b"in-process"
    blob = snapshot_of(ms, key)
    snap = load_snapshot(blob, key)
    out, hasher = s.serving_model, FeatureHasher()
    reqs = [AdRequest.from_dict({**parse_object(b), "id": "r", "event_time": 1.0})
            for b in payloads]
    feats = [request_features(r.user, r.context, r.candidates) for r in reqs]
    scores = [snap.score_request(sh, it, out, hasher) for sh, it in feats]

    def respond(r, sc):
        order = np.argsort(-sc, kind="stable")
        ids = [c.ad_id for c in r.candidates]
        return orjson.dumps([{"ad_id": ids[i], "score": v} for i, v in
                             zip(order.tolist(), np.round(sc[order], 6).tolist(), strict=True)])

    steps = {
        "parse + validate": lambda: [AdRequest.from_dict({**parse_object(b), "id": "r",
                                                          "event_time": 1.0}) for b in payloads],
        "request features": lambda: [request_features(r.user, r.context, r.candidates)
                                     for r in reqs],
        "token hashes": lambda: [hasher.prepare_request(sh, it) for sh, it in feats],
        f"score ({out}: every member)": lambda: [snap.score_request(sh, it, out, hasher)
                                                 for sh, it in feats],
        "rank + encode the answer": lambda: [respond(r, sc) for r, sc in zip(reqs, scores,
                                                                              strict=True)],
        "merged-dict path: features + score": lambda: [
            snap.score([pair_features(r.user, r.context, c) for c in r.candidates], out)
            for r in reqs],
    }
    rows = []
    for step, f in steps.items():
        f()  # warm
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t)
        rows.append({"step": step, "ms_per_request": best / len(payloads) * 1000})
    for step, f in (("snapshot: build (trainer, per version)", lambda: snapshot_of(ms, key)),
                    ("snapshot: load (replica, per swap)", lambda: load_snapshot(blob, key))):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t)
        rows.append({"step": step, "ms": best * 1000, "mb": len(blob) / 1e6})
    total = sum(r["ms_per_request"] for r in rows[:5]) - rows[2]["ms_per_request"]
    rows.append({"step": "request path total (token hashes are inside score)",
                 "ms_per_request": total})
    rows.append({"step": "merged-dict path / request path (same run)",
                 "ms_per_request": None,
                 "ratio": (rows[5]["ms_per_request"] + rows[0]["ms_per_request"]
                           + rows[4]["ms_per_request"]) / total})
    rows += cache_rows(snap, out, payloads)
    return rows


def _l3_bytes() -> int:
    """The last-level cache's size (Linux sysfs), 32 MiB where it cannot be read."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
        return int(text.rstrip("K")) * 1024 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return 32 << 20


def cache_rows(snap, out: str, payloads: list[bytes], passes: int = 3) -> list[dict]:
    """The whole request path (parse, rank as /recommend does, encode) with each request
    timed on its own, once straight after the previous one (the caches hold the model's and
    the interpreter's hot data) and once after a sweep through twice the last-level cache
    (what a replica's HTTP, logging and other processes leave of them). A replica under load
    sits near the second: its ranking took 2.8 ms of CPU a request where a loop of requests
    alone took 1.3-2.0 (docs/benchmarks.md)."""
    import time

    import numpy as np

    from streams.contracts.events import AdRequest, parse_object
    from streams.serving.ranking import Ranker
    from streams.serving.snapshots import ModelStore

    store = ModelStore()
    store.swap(snap)
    ranker = Ranker(store, out)
    sweep = np.ones(2 * _l3_bytes() // 8)

    def one(body: bytes) -> None:
        req = AdRequest.from_dict({**parse_object(body), "id": "r", "event_time": 1.0})
        [rec] = ranker.rank_many([req])
        orjson.dumps(rec.body())

    for b in payloads:
        one(b)  # warm
    took = {"hot": 0.0, "cold": 0.0}
    for _ in range(passes):
        for kind in ("hot", "cold"):  # alternating: the machine's drift hits both alike
            for b in payloads:
                if kind == "cold":
                    sweep.sum()
                t = time.perf_counter()
                one(b)
                took[kind] += time.perf_counter() - t
    n = passes * len(payloads)
    hot, cold = (took[k] / n * 1000 for k in ("hot", "cold"))
    return [{"step": "request path, caches hot (each request timed alone)",
             "ms_per_request": hot},
            {"step": "request path, caches cold (a sweep of 2x the L3 before each)",
             "ms_per_request": cold},
            {"step": "cold / hot (same run)", "ms_per_request": None, "ratio": cold / hot}]


def wait_version(port: int, version: str, timeout: float = 120.0) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    seen = 0  # in a row: each call is a new connection, and replicas share the port
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=2) as r:
                doc = orjson.loads(r.read())
            seen = seen + 1 if doc["tenants"].get("movielens", {}).get("version") == version \
                else 0
            if seen >= 8:
                return
            if seen:
                continue  # the next at once: another connection, maybe another replica
        except OSError:
            seen = 0
        time.sleep(0.3)
    raise TimeoutError(f"the serving replica did not load {version} in {timeout}s")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rates", default="200,500,1000")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--train-examples", type=int, default=20000)
    p.add_argument("--no-trainer", action="store_true")
    p.add_argument("--trainer-nice", type=int, default=0,
                   help="Run the trainer at this nice level (its CPU goes to serving first).")
    p.add_argument("--loadgen", choices=("go", "python"), default="go",
                   help="The load generator: the Go binary (falls back to Python without Go).")
    p.add_argument("--in-process", action="store_true",
                   help="Only the cost of each step of /recommend's work, no HTTP, no services.")
    p.add_argument("--replicas", default="1",
                   help="`aimass serve --workers N` for each N (one run each): 1,2")
    p.add_argument("--deadline-ms", type=float, default=0.0,
                   help="Each request carries a deadline this long after its send time, as "
                        "in an auction: rows count the 503s (shed) and the 200s past it (late)")
    p.set_defaults(backends="kafka")
    args = p.parse_args()
    data_dir = args.cache_dir.parent
    payloads = bodies(data_dir)
    if args.in_process:
        from streams.settings import Settings

        rows = in_process_costs(Settings(data_dir=data_dir), data_dir, args.train_examples,
                                payloads)
        print_table(rows, ["step", "ms_per_request", "ratio", "ms", "mb"])
        write_json(args.json, rows, candidates=100, requests=len(payloads))
        return
    binary = go_binary(args.cache_dir) if args.loadgen == "go" else None
    loadgen = "go" if binary else "python"

    def load(url: str, rate: float) -> dict:
        if binary:
            return go_load(binary, url, payloads, rate, args.duration, args.deadline_ms)
        return in_process(url, payloads, rate, args.duration, args.deadline_ms)

    def run_rates(base: str, replicas: int, kind: str, worker, serve) -> list[dict]:
        out = []
        for rate in (float(r) for r in args.rates.split(",")):
            for endpoint in ("noop", "recommend"):
                cpu, machine = serve.cpu_seconds(), machine_cpu_seconds()
                r = load(f"{base}/{endpoint}", rate)
                answered = r["requests"] - r["errors"]
                # the replicas' CPU per answer: comparable across runs where the machine's
                # speed or its other load differs, which latency at saturation is not; and
                # the whole machine's (replicas, broker, load generator, trainer, the bench):
                # what an answer costs the cores they share
                r["replica_cpu_ms"] = (round((serve.cpu_seconds() - cpu) * 1000 / answered, 3)
                                       if answered else None)
                r["machine_cpu_ms"] = (round((machine_cpu_seconds() - machine) * 1000
                                             / answered, 3) if answered else None)
                learned = (worker.counter("aimass_examples_learned_total")
                           if worker else None)  # the trainer kept learning
                out.append({"endpoint": endpoint, "backend": kind, "replicas": replicas,
                            "loadgen": loadgen, "trainer": worker is not None,
                            "trainer_nice": args.trainer_nice if worker else None,
                            "trainer_learned": learned, "deadline_ms": args.deadline_ms or None,
                            **r})
                print(out[-1], flush=True)
        return out

    rows = []
    for kind in args.backends.split(","):
        with backend(kind, args.cache_dir) as s, tempfile.TemporaryDirectory() as logs:
            # a short late-click window: live examples are released within seconds
            s = s.model_copy(update={"join_idle_flush": 3.0, "join_window": 10.0})
            ensure_topics(s)
            version = publish_trained(s, data_dir, args.train_examples)
            worker = None if args.no_trainer else WorkerProcess(s, Path(logs) / "worker.log",
                                                                nice=args.trainer_nice)
            try:
                if worker:
                    worker.wait_ready()
                    replay_settings = s.model_copy(update={"data_dir": data_dir})
                    # stamped with the present: the replay shares its tenant's clock with the
                    # live requests /recommend logs, as production traffic would
                    threading.Thread(target=run_replay, args=(replay_settings, None, 400.0),
                                     kwargs={"click_delay": 2.0, "live": True},
                                     daemon=True).start()
                for n in (int(x) for x in args.replicas.split(",")):
                    serve = WorkerProcess.serving(s, Path(logs) / f"serve-{n}.log", workers=n)
                    try:
                        wait_version(s.serving_port, version)
                        rows += run_rates(f"http://127.0.0.1:{s.serving_port}", n, kind, worker,
                                          serve)
                    finally:
                        serve.stop()
            finally:
                if worker:
                    worker.stop()
    for r in rows:
        floor = next((b for b in rows if b["endpoint"] == "noop"
                      and b["offered_rps"] == r["offered_rps"] and b["backend"] == r["backend"]
                      and b["replicas"] == r["replicas"]), None)
        if floor and r is not floor:
            r["p99_vs_noop"] = round(r["p99_ms"] / floor["p99_ms"], 2)

    print_table(rows, ["endpoint", "backend", "replicas", "offered_rps", "achieved_rps", "p50_ms", "p99_ms",
                       "p999_ms", "p99_ok_ms", "errors", "shed", "late", "p99_vs_noop",
                       "replica_cpu_ms", "machine_cpu_ms", "trainer_learned"])
    write_json(args.json, rows, duration_s=args.duration, candidates=100)


if __name__ == "__main__":
    main()
