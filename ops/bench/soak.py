"""Soak: the worker, two serving replicas, a live replay at a fixed rate and /recommend load on
both replicas, for minutes; a row every 30 s of each process's resident memory, the consumer
lag (from the broker) and the examples learned.

    python -m ops.bench.soak [--minutes 10] [--replay-rate 200] [--recommend-rate 100]
                             [--json PATH]

Writes ``{"rows": [{"t", "worker_rss_mb", "replica1_rss_mb", "replica2_rss_mb", "lag",
"learned"}], "errors": N, "p99_ms", ...}``. The goals it checks (and prints): each process's
RSS flat within 10% over the last half of the run, the lag bounded, no errors.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from ops.harness import WorkerProcess
from streams.contracts.topics import ensure_topics
from streams.sources.replay import run_replay

from .common import backend, free_port, parser, print_table, write_json
from .loadgen import go_binary, go_load, in_process
from .serving import bodies, publish_trained, wait_version

SAMPLE_EVERY = 30.0


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children's (a replica is one process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def flat_within(values: list[float], share: float = 0.10) -> bool:
    """Max and min of ``values`` within ``share`` of their mean.

    >>> flat_within([100, 104, 98]), flat_within([100, 130])
    (True, False)
    """
    mean = sum(values) / len(values)
    return (max(values) - min(values)) <= share * mean


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--replay-rate", type=float, default=200.0)
    p.add_argument("--recommend-rate", type=float, default=100.0, help="per replica")
    p.add_argument("--loadgen", choices=("go", "python"), default="go")
    p.set_defaults(backends="kafka")
    args = p.parse_args()
    data_dir = args.cache_dir.parent
    payloads = bodies(data_dir)
    duration = args.minutes * 60
    binary = go_binary(args.cache_dir) if args.loadgen == "go" else None
    kind = args.backends.split(",")[0]
    with backend(kind, args.cache_dir) as s, tempfile.TemporaryDirectory() as logs:
        s = s.model_copy(update={"join_window": 10.0, "join_idle_flush": 10.0})
        s2 = s.model_copy(update={"serving_port": free_port()})
        ensure_topics(s)
        version = publish_trained(s, data_dir, 20000)
        worker = WorkerProcess(s, Path(logs) / "worker.log")
        replicas = [WorkerProcess.serving(s, Path(logs) / "serve-1.log"),
                    WorkerProcess.serving(s2, Path(logs) / "serve-2.log")]
        loads: list[dict] = []
        try:
            worker.wait_ready()
            for port in (s.serving_port, s2.serving_port):
                wait_version(port, version)
            replay_s = s.model_copy(update={"data_dir": data_dir})
            threading.Thread(target=run_replay, args=(replay_s, None, args.replay_rate),
                             kwargs={"click_delay": 2.0, "live": True}, daemon=True).start()

            def load(port: int) -> None:
                url = f"http://127.0.0.1:{port}/recommend"
                run = go_load if binary else None
                loads.append(run(binary, url, payloads, args.recommend_rate, duration) if run
                             else in_process(url, payloads, args.recommend_rate, duration))

            threads = [threading.Thread(target=load, args=(port,), daemon=True)
                       for port in (s.serving_port, s2.serving_port)]
            for t in threads:
                t.start()
            rows, start = [], time.monotonic()
            while time.monotonic() - start < duration:
                time.sleep(min(SAMPLE_EVERY, max(duration - (time.monotonic() - start), 0)))
                metrics = worker.metrics()
                rows.append({
                    "t": round(time.monotonic() - start),
                    "worker_rss_mb": round(rss_mb(worker.proc.pid), 1),
                    "replica1_rss_mb": round(rss_mb(replicas[0].proc.pid), 1),
                    "replica2_rss_mb": round(rss_mb(replicas[1].proc.pid), 1),
                    "lag": int(sum(v for (n, _), v in metrics.items()
                                   if n == "aimass_consumer_lag")),
                    "learned": int(sum(v for (n, _), v in metrics.items()
                                       if n == "aimass_examples_learned_total"))})
                print(rows[-1], flush=True)
            for t in threads:
                t.join(120)
        finally:
            for r in replicas:
                r.stop()
            worker.stop()
    half = [r for r in rows if r["t"] >= duration / 2]
    verdict = {f"{k}_flat_last_half": flat_within([r[k] for r in half])
               for k in ("worker_rss_mb", "replica1_rss_mb", "replica2_rss_mb")} if half else {}
    errors = sum(x["errors"] for x in loads)
    p99 = max((x["p99_ms"] for x in loads), default=None)
    print_table(rows, ["t", "worker_rss_mb", "replica1_rss_mb", "replica2_rss_mb", "lag",
                       "learned"])
    print({"errors": errors, "p99_ms": p99, "max_lag": max(r["lag"] for r in rows), **verdict})
    write_json(args.json, rows, errors=errors, p99_ms=p99, minutes=args.minutes,
               replay_rate=args.replay_rate, recommend_rate_per_replica=args.recommend_rate,
               loads=loads, **verdict)


if __name__ == "__main__":
    main()
