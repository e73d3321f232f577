"""The main job on the embedded defaults: Tansu + chdb, MovieLens-100k replayed as an ad stream,
the worker consuming it into ClickHouse, and a summary read back from ClickHouse."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import orjson

from ops import services
from ops.harness import WorkerProcess
from sinks.clickhouse import connect
from streams.contracts.topics import ensure_topics
from streams.settings import Settings
from streams.sources.replay import run_replay


def demo_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"embedded": True, "clickhouse_url": None,
                                       "data_dir": settings.data_dir / "demo",
                                       "join_idle_flush": 3.0})


def run_demo(settings: Settings, limit: int | None, json_path: Path | None) -> dict:
    s = demo_settings(settings)
    shutil.rmtree(s.data_dir / "chdb", ignore_errors=True)  # Tansu keeps nothing across runs
    s.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "movielens-100k").mkdir(parents=True, exist_ok=True)
    print(f"1. embedded services (Tansu broker at {s.kafka_bootstrap}, chdb at {s.data_dir}/chdb)")
    services.down(s, echo=lambda _: None)
    services.up(s, embedded=True, prometheus=False)
    try:
        ensure_topics(s)
        print("2. the stream worker (aimass worker), metrics on "
              f"http://127.0.0.1:{s.web_port}/metrics")
        worker = WorkerProcess(s, s.data_dir / "worker.log")
        try:
            worker.wait_ready()
            print("3. MovieLens-100k replayed as ad requests, impressions and clicks")
            stats = run_replay(s.model_copy(update={"data_dir": settings.data_dir}), limit,
                               progress=True)
            started = time.monotonic()
            # every rating is one shown candidate: one labelled example each
            worker.wait_for("aimass_checkpoint_examples", stats.requests, 1800)
            drain = time.monotonic() - started
        finally:
            worker.stop()
        summary = summarize(s, stats, drain)
    finally:
        services.down(s, echo=lambda _: None)
    print_summary(summary)
    if json_path:
        json_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        print(f"summary written to {json_path}")
    return summary


def summarize(s: Settings, stats, drain_seconds: float) -> dict:
    ch = connect(s.clickhouse_dsn)
    try:
        return _summary(ch, stats, drain_seconds)
    finally:
        ch.close()


def _summary(ch, stats, drain_seconds: float) -> dict:
    counts = {t: ch.query(f"SELECT count() FROM {t} FINAL")[0][0]
              for t in ("ad_requests", "feedback", "examples", "predictions", "dead_letters")}
    genres = ch.query(
        "SELECT JSONExtractString(candidates, 1, 'features', 'genre') AS genre, count() AS n, "
        "countIf(f.kind = 'click') AS clicks FROM ad_requests AS r "
        "INNER JOIN feedback AS f ON f.request_id = r.request_id "
        "WHERE f.kind IN ('click', 'impression') GROUP BY genre ORDER BY n DESC LIMIT 5")
    return {
        "events_produced": stats.events,
        "examples_learned": counts["examples"],
        "models": model_table(ch),
        "replay_seconds": round(stats.seconds, 2),
        "drain_seconds_after_replay": round(drain_seconds, 2),
        "tables": counts,
        "top_genres": [{"genre": g, "impressions_and_clicks": int(n), "clicks": int(c)}
                       for g, n, c in genres],
    }


def model_table(ch) -> list[dict]:
    """Per model, from ClickHouse: its predictions (made before it learned each label) and the
    learning rate the worker last recorded."""
    import numpy as np

    from learners.metrics import log_loss, roc_auc

    out = []
    models = [r[0] for r in ch.query("SELECT DISTINCT model FROM predictions ORDER BY model")]
    for name in models:
        rows = ch.query(f"SELECT label, p FROM predictions FINAL WHERE model = '{name}' "
                        f"AND holdout = 0")
        y = np.array([r[0] for r in rows])
        p = np.array([r[1] for r in rows], dtype=np.float64)
        rate = ch.query(f"SELECT examples_per_s FROM model_metrics WHERE model = '{name}' "
                        f"ORDER BY ts DESC, examples DESC LIMIT 1")
        # an ensemble has no learning time of its own (its members do): no rate
        per_s = round(rate[0][0]) if rate and rate[0][0] > 0 else None
        out.append({"name": name, "examples": len(rows), "logloss": round(log_loss(y, p), 4),
                    "auc": round(roc_auc(y, p), 4), "events_per_s": per_s})
    return sorted(out, key=lambda m: m["logloss"])


def print_summary(summary: dict) -> None:
    print("\nLanded in ClickHouse:")
    for table, n in summary["tables"].items():
        print(f"  {table:14} {n:>9,}")
    print(f"\n{summary['events_produced']:,} events produced in {summary['replay_seconds']}s; "
          f"the worker had learned them all {summary['drain_seconds_after_replay']}s after the "
          f"replay ended")
    print("\nModels (progressive: each prediction made before learning its label):")
    print(f"  {'model':18} {'examples':>9} {'log loss':>9} {'AUC':>7} {'learn ex/s':>11}")
    for m in summary["models"]:
        rate = f"{m['events_per_s']:,}" if m["events_per_s"] else "-"
        print(f"  {m['name']:18} {m['examples']:>9,} {m['logloss']:>9.4f} {m['auc']:>7.4f} "
              f"{rate:>11}")
    print("\nTop genres of the shown movie (feedback rows, clicks):")
    for g in summary["top_genres"]:
        print(f"  {g['genre']:12} {g['impressions_and_clicks']:>8,} {g['clicks']:>8,}")
