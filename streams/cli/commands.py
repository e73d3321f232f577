"""Our subcommands on the Faust command line: up, down, ps, status, topics, data, replay,
train, backfill, keys, serve, demo."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import orjson
from faust.cli import argument, option

from streams.settings import Settings


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _report_options() -> tuple:
    """``--wait``, ``--timeout``, ``--json`` and ``--plot``: of ``train`` and ``backfill``."""
    return (option("--wait", is_flag=True, default=False,
                   help="Wait until every example is learned; print each model's figures."),
            option("--timeout", type=float, default=1800.0,
                   help="Seconds --wait waits for the worker."),
            option("--json", "json_path", type=str, default="",
                   help="With --wait: also write the figures as JSON here."),
            option("--plot", "plot_path", type=str, default="",
                   help="With --wait: draw each model's log loss along the stream (PNG)."))


def _report(settings: Settings, tenant: str, ids: list[str], timeout: float, json_path: str,
            plot_path: str) -> None:
    """``--wait``: until every id is learned, then the figures (and ``--json``, ``--plot``)."""
    from streams.cli import train_report as tr

    try:
        ms = tr.wait_learned(settings, tenant, ids, timeout)
    except TimeoutError as exc:
        _fail(str(exc))
    doc = tr.report(ms, tenant, len(ids))
    print(tr.render(doc))
    if json_path:
        tr.write_json(doc, Path(json_path))
    if plot_path:
        tr.plot(doc, Path(plot_path))
        print(f"plotted to {plot_path}")


def register(app, settings: Settings) -> None:  # noqa: C901 - one small function per command
    from ops import services as svc
    from ops.services import ServiceError

    @app.command(option("--embedded", is_flag=True, default=False,
                        help="Tansu broker + chdb instead of Kafka + ClickHouse server."),
                 option("--no-prometheus", is_flag=True, default=False,
                        help="Do not start Prometheus."))
    async def up(self, embedded: bool, no_prometheus: bool) -> None:
        """Start the services on loopback and wait until they are ready."""
        from sinks import schema
        from sinks.clickhouse import connect
        from streams.contracts.topics import ensure_topics

        s = settings.model_copy(update={"embedded": embedded or settings.embedded})
        try:
            svc.up(s, embedded=s.embedded, prometheus=not no_prometheus)
            created = ensure_topics(s)
            print(f"topics: {sum(v == 'created' for v in created.values())} created, "
                  f"{sum(v == 'exists' for v in created.values())} already there")
            if not s.embedded:  # chdb lives in the worker's process; it makes its own schema
                schema.create_schema(connect(s.clickhouse_dsn))
                print("clickhouse: schema ready")
        except ServiceError as exc:
            _fail(str(exc))

    @app.command()
    async def down(self) -> None:
        """Stop what `aimass up` started (by the process ids it recorded)."""
        if not svc.down(settings):
            print("nothing was running")

    @app.command()
    async def ps(self) -> None:
        """Show the services `aimass up` started and whether they run."""
        for name, entry in svc.status(settings).items():
            state = "running" if entry["running"] else "stopped"
            print(f"{name:12} {state:8} pid {entry['pid']:<8} {entry['address']}")

    @app.command(option("--json", "as_json", is_flag=True, default=False, help="JSON output."),
                 option("--worker", "workers", type=str, multiple=True,
                        help="A worker's web URL (repeat; default this machine's)."),
                 option("--replica", "replicas", type=str, multiple=True,
                        help="A serving replica's URL (repeat; default this machine's)."))
    async def status(self, as_json: bool, workers: tuple[str, ...],
                     replicas: tuple[str, ...]) -> None:
        """The cluster: the worker group and its partitions, lag per partition, the trainer
        of each tenant, the model version each replica serves."""
        from streams.cli.status import cluster_view, render

        try:
            view = cluster_view(settings, list(workers) or
                                [f"http://127.0.0.1:{settings.web_port}"], list(replicas) or
                                [f"http://127.0.0.1:{settings.serving_port}"])
        except Exception as exc:  # Kafka's own message: unreachable, no such group
            _fail(f"cannot read the cluster from {settings.kafka_bootstrap}: {exc}")
        if as_json:
            sys.stdout.write(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            print(render(view))

    @app.command(option("--json", "as_json", is_flag=True, default=False, help="JSON output."),
                 option("--create", is_flag=True, default=False, help="Create missing topics."))
    async def topics(self, as_json: bool, create: bool) -> None:
        """The topic catalogue: name, key, partitions, configs."""
        from streams.contracts.topics import catalogue_json, ensure_topics

        if create:
            ensure_topics(settings)
        cat = catalogue_json(settings)
        if as_json:
            sys.stdout.write(orjson.dumps(cat, option=orjson.OPT_INDENT_2).decode() + "\n")
            return
        for t in cat:
            cfg = ",".join(f"{k}={v}" for k, v in t["configs"].items())
            print(f"{t['name']:26} key={t['key']:12} partitions={t['partitions']:<3} {cfg}")

    @app.command(argument("name", type=str))
    async def data(self, name: str) -> None:
        """Fetch a real data set into the data directory (movielens-100k)."""
        from streams.sources import movielens

        if name != "movielens-100k":
            _fail(f"unknown data set {name!r}; available: movielens-100k")
        path = movielens.fetch(settings.data_dir)
        print(f"movielens-100k: {path} ({', '.join(movielens.FILES)})")

    @app.command(argument("name", type=str),
                 option("--limit", type=int, default=0, help="Only the first N ratings."),
                 option("--rate", type=float, default=0.0, help="Requests per second (0: max)."),
                 option("--click-delay", type=float, default=0.0, help="Seconds before a click."),
                 option("--extra-candidates", type=int, default=0,
                        help="Sampled extra candidate ads per request."),
                 option("--malformed-every", type=int, default=0,
                        help="Mix one malformed request in every N (tests the dead letters)."),
                 option("--live", is_flag=True, default=False,
                        help="Stamp events with the time they are sent (beside live traffic)."))
    async def replay(self, name: str, limit: int, rate: float, click_delay: float,
                     extra_candidates: int, malformed_every: int, live: bool) -> None:
        """Replay a data set to Kafka as ad requests and feedback."""
        from streams.sources.replay import run_replay

        if name != "movielens-100k":
            _fail(f"unknown data set {name!r}; available: movielens-100k")
        stats = run_replay(settings, limit or None, rate or None, click_delay, extra_candidates,
                           malformed_every, progress=True, live=live)
        print(f"produced {stats.events} events in {stats.seconds:.1f}s: {stats.requests} requests, "
              f"{stats.impressions} impressions, {stats.clicks} clicks, "
              f"{stats.malformed} malformed")

    @app.command(argument("file", type=str),
                 option("--label", type=str, required=True,
                        help="The label column: 0/1, true/false, yes/no (or see --positive)."),
                 option("--tenant", type=str, default="default", help="Tenant of the examples."),
                 option("--positive", type=str, default=None,
                        help="The label value that means 1 (e.g. '>50K'); every other is 0."),
                 option("--time-column", type=str, default=None,
                        help="Learn the rows in this column's order (default: the file's)."),
                 option("--test-share", type=float, default=0.0,
                        help="Share of rows to score and never learn (reported apart)."),
                 option("--weight-column", type=str, default=None,
                        help="Each row's weight, relative (divided by the file's mean), in "
                             "learning and every metric."),
                 *_report_options())
    async def train(self, file: str, label: str, tenant: str, positive: str | None,
                    time_column: str | None, test_share: float, weight_column: str | None,
                    wait: bool, timeout: float, json_path: str, plot_path: str) -> None:
        """Send a labelled CSV/TSV/Parquet file to the training topic, in the file's row order
        (or --time-column's): the rows of a tenant share one partition, so they are learned
        in that order."""
        from streams.contracts.topics import ensure_topics, topic_names
        from streams.producer import EventProducer
        from streams.sources import webhdfs
        from streams.sources.files import examples_from_file

        try:  # a file on HDFS (hdfs://namenode:9870/path) is fetched over WebHDFS first
            with webhdfs.local_file(file) as path:
                if not path.exists():
                    _fail(f"{file}: no such file")
                examples = examples_from_file(path, label, tenant, positive=positive,
                                              time_column=time_column, test_share=test_share,
                                              weight_column=weight_column)
        except ValueError as exc:
            _fail(str(exc))
        ensure_topics(settings)
        producer = EventProducer(settings)
        topic = topic_names(settings)["training"]
        for ex in examples:
            producer.send(topic, tenant, ex)  # one partition per tenant: the order holds
        producer.flush()
        print(f"sent {len(examples)} training examples from {path.name} to {topic} "
              f"(tenant {tenant})")
        if wait or json_path or plot_path:
            _report(settings, tenant, [e.id for e in examples], timeout, json_path, plot_path)

    @app.command(argument("url", type=str),
                 option("--query", type=str, required=True, help="SQL whose rows are examples."),
                 option("--label", type=str, required=True, help="The 0/1 label column."),
                 option("--tenant", type=str, default="default", help="Tenant of the examples."),
                 option("--id-column", type=str, default="",
                        help="Column that names each example (default: query hash + row)."),
                 option("--time-column", type=str, default="",
                        help="Column with each example's event time."),
                 option("--weight-column", type=str, default="",
                        help="Column with each example's weight (0 to 1000)."),
                 option("--batch", type=int, default=5000, help="Rows per fetch."),
                 *_report_options())
    async def backfill(self, url: str, query: str, label: str, tenant: str, id_column: str,
                       time_column: str, weight_column: str, batch: int, wait: bool,
                       timeout: float, json_path: str, plot_path: str) -> None:
        """History from PostgreSQL or MySQL/MariaDB (postgresql://... or mysql://...) to the
        training topic; rows with an unusable label go to the dead letters."""
        from streams.contracts.events import encode
        from streams.contracts.topics import ensure_topics, topic_names
        from streams.producer import EventProducer
        from streams.sources import backfill as bf

        ensure_topics(settings)
        producer = EventProducer(settings)
        names = topic_names(settings)
        ids: list[str] = []

        def send(examples):
            for ex in examples:  # one partition per tenant: learned in the query's order
                producer.send(names["training"], tenant, ex)
                ids.append(ex.id)
            producer.flush()

        def send_dead(letters):
            for d in letters:
                producer.send_raw(names["dead-letters"], d.source_topic.encode(), encode(d))
            producer.flush()

        try:
            stats = bf.backfill(url, query, label, tenant, send, send_dead, id_column or None,
                                time_column or None, batch, weight_column or None)
        except ValueError as exc:
            _fail(str(exc))
        except Exception as exc:  # the database's own message: connection, SQL, permissions
            _fail(f"{type(exc).__name__}: {exc}")
        print(f"backfill: {stats.rows} rows -> {stats.examples} examples to "
              f"{names['training']} (tenant {tenant}), {stats.dead_letters} to "
              f"{names['dead-letters']}, in {stats.seconds:.1f}s")
        if wait or json_path or plot_path:
            _report(settings, tenant, ids, timeout, json_path, plot_path)

    @app.command(argument("action", type=str),
                 argument("name", type=str, required=False, default=""),
                 option("--role", type=str, default="scorer",
                        help="viewer, scorer, trainer or admin."),
                 option("--tenant", "tenants", type=str, multiple=True,
                        help="A tenant the key may use (repeat; '*' for all)."))
    async def keys(self, action: str, name: str, role: str, tenants: tuple[str, ...]) -> None:
        """API keys of the serving API: `keys add NAME --role R --tenant T`, `keys revoke
        NAME`, `keys list`. Adding and revoking are recorded in the audit trail."""
        import getpass

        from streams.control.audit import AuditEvent, record
        from streams.serving.access import add_key, list_keys, revoke_key

        if settings.api_keys is None:
            _fail("set AIMASS_API_KEYS to the keys file first")
        actor = f"cli:{getpass.getuser()}"
        if action == "list":
            for k in list_keys(settings.api_keys):
                print(f"{k['name']:20} {k['role']:8} {','.join(k['tenants'])}")
        elif action in ("add", "revoke"):
            if not name:
                _fail(f"keys {action} needs a NAME")
            try:
                if action == "add":
                    key = add_key(settings.api_keys, name, role, list(tenants))
                    was = {"name": name, "role": role, "tenants": sorted(set(tenants))}
                else:
                    was = revoke_key(settings.api_keys, name)
            except ValueError as exc:
                _fail(str(exc))
            for tenant in was["tenants"]:
                done = {"add": "key.added", "revoke": "key.revoked"}[action]
                record(settings, AuditEvent.new(actor, done, tenant, was))
            if action == "add":
                print(f"key {name!r} ({role}; tenants {', '.join(sorted(tenants))}); it is "
                      f"shown only now:\n{key}")
            else:
                print(f"key {name!r} revoked; replicas stop taking it when restarted")
        else:
            _fail(f"unknown action {action!r}: add, revoke or list")

    @app.command(option("--port", type=int, default=0, help="Port (default AIMASS_SERVING_PORT)."),
                 option("--workers", type=int, default=0,
                        help="Replica processes on the port (default: half the cores)."),
                 option("--reuse-port", is_flag=True, default=False,
                        help="Bind with SO_REUSEPORT (set for the replicas of --workers)."))
    async def serve(self, port: int, workers: int, reuse_port: bool) -> None:
        """The recommendation API: POST /recommend, /predict; GET /models, /openapi.json."""
        from streams.serving.replica import run
        from streams.serving.supervisor import Supervisor, default_workers

        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] "
                            "[%(levelname)s] %(name)s: %(message)s")
        port = port or settings.serving_port
        n = workers or default_workers()
        if n > 1 and not reuse_port:
            raise SystemExit(Supervisor(port, n).run())
        try:
            await run(settings, port, reuse_port)
        except ValueError as exc:  # a bad keys file
            _fail(str(exc))

    @app.command(option("--limit", type=int, default=20000,
                        help="Replay only the first N ratings (0: all 100,000)."),
                 option("--json", "json_path", type=str, default="",
                        help="Also write the summary as JSON here."))
    async def demo(self, limit: int, json_path: str) -> None:
        """The main job on the embedded defaults: replay MovieLens, run the worker, summarise."""
        from streams.cli.demo import run_demo

        try:
            run_demo(settings, limit or None, Path(json_path) if json_path else None)
        except ServiceError as exc:
            _fail(str(exc))
