"""Backfill from real PostgreSQL and MariaDB servers (Debian's packages, started on loopback):
every row becomes an example or a dead letter with its reason, in batches through a
server-side cursor, with ids that name the same rows on a second run; and through the `aimass
backfill` command onto the training topic."""

from __future__ import annotations

import os

import pytest

from ops.bench.common import free_port
from ops.harness import settings_env
from ops.services.sqldb import start_mariadb, start_postgres
from streams.contracts.events import DeadLetter, TrainingExample, decode
from streams.contracts.topics import topic_names
from streams.sources.backfill import RowConverter, backfill
from tests.helpers import aimass, consume_all

N, BAD = 1200, (17, 500, 1111)  # rows; ids whose label is unusable


def fill(execute, placeholder: str) -> None:
    execute("CREATE TABLE ad_log (id INTEGER PRIMARY KEY, seen_at TIMESTAMP, user_id VARCHAR(20),"
            " genre VARCHAR(20), bid DECIMAL(8, 3), age INTEGER, clicked VARCHAR(10))")
    rows = [(i, f"2024-05-{1 + i % 28:02d} 12:00:00", f"u{i % 50}", ["Drama", "Comedy"][i % 2],
             f"{0.1 + i % 7 / 10:.3f}", None if i % 9 == 0 else 20 + i % 40,
             "maybe" if i in BAD else ["no", "yes"][i % 3 == 0]) for i in range(N)]
    execute(f"INSERT INTO ad_log VALUES ({', '.join([placeholder] * 7)})", rows)


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database(request):
    if request.param == "postgresql":
        import psycopg

        server = start_postgres(free_port())
        with psycopg.connect(server.url, autocommit=True) as c:
            def execute(sql, rows=None):
                with c.cursor() as cur:
                    cur.executemany(sql, rows) if rows else cur.execute(sql)
            fill(execute, "%s")
    else:
        import pymysql

        server = start_mariadb(free_port())
        c = pymysql.connect(host="127.0.0.1", port=int(server.url.split(":")[2].split("/")[0]),
                            user="root", database="aimass", autocommit=True)

        def execute(sql, rows=None):
            with c.cursor() as cur:
                cur.executemany(sql, rows) if rows else cur.execute(sql)
        fill(execute, "%s")
        c.close()
    yield server
    server.stop()


def run(url, **kw):
    sent, dead, batches = [], [], []

    def send(exs):
        batches.append(len(exs))
        sent.extend(exs)

    stats = backfill(url, "SELECT * FROM ad_log ORDER BY id", "clicked", "acme", send,
                     dead.extend, batch=kw.pop("batch", 256), **kw)
    return stats, sent, dead, batches


def test_every_row_is_an_example_or_a_dead_letter(database):
    stats, sent, dead, batches = run(database.url, id_column="id", time_column="seen_at")
    assert stats.rows == N and stats.examples == N - len(BAD) and stats.dead_letters == len(BAD)
    assert len(batches) >= N // 256  # read in batches, not all at once
    assert sorted(d.offset for d in dead) == sorted(BAD)
    assert all(d.field == "label" and "maybe" in d.reason for d in dead)
    ex = {e.id.rsplit(":", 1)[1]: e for e in sent}
    e3 = ex["3"]
    assert e3.label == 1 and e3.tenant == "acme" and e3.features["genre"] == "Comedy"
    assert e3.features["bid"] == pytest.approx(0.4) and e3.features["age"] == 23
    assert e3.event_time == pytest.approx(1714824000.0)  # 2024-05-04 12:00 UTC
    assert "age" not in ex["9"].features  # NULL dropped
    assert {"id", "clicked", "seen_at"}.isdisjoint(e3.features)


def test_a_second_run_names_the_same_examples(database):
    a = [e.id for e in run(database.url)[1]]
    b = [e.id for e in run(database.url, batch=1000)[1]]
    assert a == b and len(set(a)) == N - len(BAD)


def test_errors_are_the_databases_own(database):
    with pytest.raises(Exception, match="(?i)ad_lgo|doesn't exist|does not exist"):
        backfill(database.url, "SELECT * FROM ad_lgo", "clicked", "acme", print, print)
    stats, sent, dead, _ = run(database.url.replace("ad_log", "x"), id_column="nope")
    assert stats.examples == 0 and len(dead) == N and dead[0].field == "id"
    long = RowConverter("y", "acme", "postgresql:ads", id_column="k")  # ids are never cut
    good, bad = long.convert([{"k": "x" * 200, "y": 1}, {"k": "short", "y": 0}], start=0)
    assert [e.id for e in good] == ["postgresql:ads:short"] and bad[0].field == "id"


@pytest.mark.services
def test_backfill_command_sends_to_the_training_topic(fresh, database):
    env = {**os.environ, **settings_env(fresh)}
    res = aimass("backfill", database.url, "--query", "SELECT * FROM ad_log", "--label",
                 "clicked", "--tenant", "acme", "--id-column", "id", env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{N} rows -> {N - len(BAD)} examples" in res.stdout
    names = topic_names(fresh)
    msgs = consume_all(fresh, names["training"], N - len(BAD), f"bf-{fresh.app_id}", idle=2)
    exs = [decode(TrainingExample, m.value()) for m in msgs]
    assert len({e.id for e in exs}) == N - len(BAD) and {e.tenant for e in exs} == {"acme"}
    dls = consume_all(fresh, names["dead-letters"], len(BAD), f"bfd-{fresh.app_id}", idle=2)
    assert sorted(decode(DeadLetter, m.value()).offset for m in dls) == sorted(BAD)
    res = aimass("backfill", "sqlite:///x.db", "--query", "SELECT 1", "--label", "y", env=env)
    assert res.returncode == 2 and "postgresql://" in res.stderr


def test_a_weight_column_weighs_rows_and_a_bad_weight_is_a_dead_letter():
    conv = RowConverter("y", "acme", "postgresql:ads", id_column="k", weight_column="w")
    good, bad = conv.convert([{"k": 1, "y": 1, "w": 2.5, "x": "a"}, {"k": 2, "y": 0, "w": -1},
                              {"k": 3, "y": 0, "w": None}, {"k": 4, "y": 1, "w": 1}], start=0)
    assert [(e.id, e.weight) for e in good] == [("postgresql:ads:1", 2.5), ("postgresql:ads:4", 1.0)]
    assert "w" not in good[0].features
    assert [(d.offset, d.field) for d in bad] == [(1, "weight"), (2, "weight")]
