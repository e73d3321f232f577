"""The one settings object. It reads ``AIMASS_*`` environment variables and nothing else.

Nothing here connects anywhere: building a :class:`Settings` only reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.serving.overload import MAX_IN_FLIGHT, MAX_LAG


class Settings(BaseSettings):
    """Configuration for every aimass process, from ``AIMASS_<FIELD>`` variables.

    >>> s = Settings(data_dir="/tmp/x", embedded=True)
    >>> s.clickhouse_dsn
    'chdb:///tmp/x/chdb'
    >>> Settings(kafka_bootstrap="127.0.0.1:19092").kafka_port
    19092
    """

    model_config = SettingsConfigDict(env_prefix="AIMASS_", extra="ignore")

    data_dir: Path = Field(Path(".aimass"), description="Where services, data and state live.")
    cache_dir: Path | None = Field(None, description="Downloaded jars; default <data_dir>/cache.")
    embedded: bool = Field(False, description="Use Tansu + chdb instead of Kafka + ClickHouse.")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_controller_port: int = Field(9093, description="KRaft controller port (aimass up).")
    kafka_version: str = Field("4.1.1", description="Apache Kafka version Maven resolves.")
    clickhouse_url: str | None = Field(
        None,
        description="clickhouse://host:port/db, or chdb://PATH; default follows `embedded`.",
    )
    clickhouse_http_port: int = Field(8123, description="ClickHouse HTTP port (aimass up).")
    clickhouse_tcp_port: int = Field(9000, description="ClickHouse native port (aimass up).")
    clickhouse_interserver_port: int = Field(9009, description="ClickHouse interserver HTTP "
                                             "port (aimass up).")
    prometheus_port: int = Field(9090, description="Prometheus port (aimass up).")
    bind_host: str = Field("127.0.0.1", description="Address the worker's and the API's HTTP "
                           "servers bind (0.0.0.0 in containers).")
    web_port: int = Field(6066, description="Worker web port: /metrics for Prometheus.")
    serving_port: int = Field(6067, description="Serving API port (aimass serve).")
    serving_model: str = Field("ensemble_stacking", description="Output /recommend ranks by "
                               "(a member or ensemble_<strategy>).")
    serving_max_lag: float = Field(MAX_LAG, description="Seconds a replica's event loop may run "
                                   "late before it answers new calls 503 (Retry-After).")
    serving_max_in_flight: int = Field(MAX_IN_FLIGHT, description="Calls of one endpoint a "
                                       "replica holds at once (bodies being read, waiting, "
                                       "being scored); past it 503.")
    cluster_workers: str = Field("", description="Workers' web URLs (comma-separated) that "
                                 "GET /cluster asks for trainers; default this machine's.")
    api_keys: Path | None = Field(None, description="API keys file (aimass keys add); unset: "
                                  "the serving API is open.")
    tenants: Path | None = Field(None, description="Tenants file (JSON): per-tenant quotas "
                                 "of the serving API, see streams/serving/quotas.py.")
    scrape_key_file: Path | None = Field(None, description="File with the key Prometheus "
                                         "scrapes the API's /metrics with (a viewer key, "
                                         "needed when API keys are on).")
    scrape_interval: str = Field("5s", description="Prometheus scrape interval (aimass up).")
    topic_prefix: str = Field("aimass", description="Prefix of every topic name.")
    partitions: int = Field(4, description="Partitions of the keyed event topics.")
    replication: int = Field(1, description="Replication factor of created topics.")
    app_id: str = Field("aimass", description="Faust app id: the consumer group of the worker.")
    rebalance_timeout: float | None = Field(
        None, description="Consumer-group rebalance timeout (s); default 10, embedded 3 (Tansu "
        "holds every join for the full timeout).")
    batch_size: int = Field(2000, description="Most events per micro-batch.")
    faust_driver: str = Field("aimass", description="Faust transport: 'aimass' (the consumer "
                              "of streams/worker/consumer.py) or 'kafka' (Faust's stock one).")
    stream_buffer: int = Field(32768, description="Faust per-stream buffer (events).")
    models: str = Field("ftrl,fm,river_logreg,adpredictor,forest",
                        description="The model set every tenant gets (learners.registry.ALL).")
    ensembles: str = Field("average,weighted,vote,stacking",
                           description="Ensembles over each model set's members.")
    vote_threshold: float = Field(0.6, description="Share of votes that settles a vote.")
    vote_policy: str = Field("weighted", description="Vote conflict policy: weighted, average, "
                             "best, abstain.")
    device: str = Field("auto", description="Deep models: auto (CUDA when present), cpu, cuda.")
    guard_gap: float = Field(0.05, description="Overfitting alert: holdout - train log loss.")
    guard_tolerance: float = Field(0.05, description="Degrading alert: holdout vs its best.")
    guard_patience: int = Field(3, description="Checks in a row before an alert.")
    rollback: bool = Field(True, description="Roll a model back to its best holdout state on "
                           "an alert.")
    join_window: float = Field(1800.0, description="Late-click window, seconds of event time.")
    join_order: str = Field("request", description="Release joined examples in 'request' "
                            "order (honest metrics) or on 'arrival' (clicks at once).")
    join_merge: bool = Field(True, description="In 'request' order, release examples across "
                             "partitions in request-time order (a partition read ahead waits).")
    join_idle_flush: float = Field(30.0, description="Close every open window once the join "
                                   "has caught up and seen nothing this long (wall seconds).")
    holdout_fraction: float = Field(0.05, description="Share of example ids held out: "
                                    "scored, never learned (validation/test).")
    checkpoint_interval: float = Field(5.0, description="Seconds between trainer checkpoints "
                                       "(offsets are committed only up to a checkpoint).")
    gc_full_every: float = Field(30.0, gt=0, description="Seconds between full garbage "
                                 "collections in workers and replicas (none triggered by "
                                 "allocation: see streams.gcpause).")
    sink_min_rows: int = Field(20_000, ge=1, le=100_000,
                               description="Rows of one table gathered into one ClickHouse "
                               "insert by a worker's stages (streams.worker.write_behind).")
    sink_max_seconds: float = Field(1.0, ge=0.0, le=60.0,
                                    description="Longest (s) a row waits for its table's "
                                    "insert to fill; its event's acknowledgement waits too.")
    gc_young_allocations: int = Field(1_000_000, ge=1, lt=2**31 - 1,
                                      description="Allocations between young garbage "
                                      "collections in workers (CPython's own: 700); their "
                                      "survivors wait for the full ones (streams.gcpause).")
    batch_within: float = Field(0.5, ge=0.0, le=60.0,
                                description="Longest wait (s) to fill a micro-batch.")
    state_key: str | None = Field(None, description="Key that signs model state on Kafka "
                                  "(HMAC-SHA256); default: the state key file.")
    state_key_file: Path | None = Field(None, description="File holding the state key; "
                                        "default <data_dir>/state.key, made if missing.")
    dedup_horizon: float = Field(7 * 86400.0, description="Exactly-once horizon, seconds of "
                                 "event time an id is remembered (the topics' retention).")
    dedup_capacity: int = Field(2_000_000, description="Exactly-once horizon: most ids "
                                "remembered per tenant.")

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def clickhouse_dsn(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        if self.embedded:
            return f"chdb://{self.data_dir.resolve() / 'chdb'}"
        return f"clickhouse://127.0.0.1:{self.clickhouse_tcp_port}/aimass"

    @property
    def group_rebalance_timeout(self) -> float:
        if self.rebalance_timeout is not None:
            return self.rebalance_timeout
        return 3.0 if self.embedded else 10.0

    def cluster_worker_urls(self) -> list[str]:
        urls = [u.strip() for u in self.cluster_workers.split(",") if u.strip()]
        return urls or [f"http://127.0.0.1:{self.web_port}"]

    @property
    def model_names(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    @property
    def ensemble_names(self) -> list[str]:
        return [m.strip() for m in self.ensembles.split(",") if m.strip()]

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @model_validator(mode="after")
    def _default_cache_dir(self) -> Settings:
        if self.cache_dir is None:
            self.cache_dir = self.data_dir / "cache"
        return self
