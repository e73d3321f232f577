"""Files on HDFS over WebHDFS, against a server that speaks the protocol as a namenode does:
``op=OPEN`` answered with a redirect to a datanode that sends the bytes, a missing file with
404. A task (and ``aimass train``) takes an ``hdfs://`` path like a local one."""

from __future__ import annotations

import pytest
from aiohttp import web

from streams.control import jobs
from streams.control.tasks import Task
from streams.settings import Settings
from streams.sources import webhdfs
from tests.helpers import ServerThread, captured_sends

CSV = b"x,y\n" + b"".join(f"{i},{i % 2}\n".encode() for i in range(7))


def namenode(files: dict[str, bytes], seen: list) -> web.Application:
    async def open_(request):
        seen.append(dict(request.query))
        path = "/" + request.match_info["path"]
        if request.query.get("op") != "OPEN":
            return web.json_response({"RemoteException": {"message": "bad op"}}, status=400)
        if path not in files:
            return web.json_response({"RemoteException": {
                "exception": "FileNotFoundException", "message": f"File {path} not found"}},
                status=404)
        raise web.HTTPTemporaryRedirect(f"/datanode{path}")

    async def datanode(request):
        return web.Response(body=files["/" + request.match_info["path"]])

    app = web.Application()
    app.router.add_get("/webhdfs/v1/{path:.*}", open_)
    app.router.add_get("/datanode/{path:.*}", datanode)
    return app


@pytest.fixture()
def hdfs():
    seen: list = []
    with ServerThread(namenode({"/data/rows.csv": CSV}, seen)) as srv:
        srv.seen = seen
        srv.base = srv.url("").replace("http://", "hdfs://").rstrip("/")
        yield srv


def test_a_file_is_fetched_through_the_datanode_redirect(hdfs, tmp_path, monkeypatch):
    monkeypatch.setenv("AIMASS_HDFS_USER", "etl")
    got = webhdfs.fetch(f"{hdfs.base}/data/rows.csv", into=tmp_path)
    assert got.name == "rows.csv" and got.read_bytes() == CSV
    assert hdfs.seen == [{"op": "OPEN", "user.name": "etl"}]


def test_a_missing_file_or_a_bad_url_is_named(hdfs):
    with pytest.raises(ValueError, match="HDFS answered 404"):
        webhdfs.fetch(f"{hdfs.base}/data/none.csv")
    with pytest.raises(ValueError, match="not an HDFS URL"):
        webhdfs.fetch("hdfs:///no-host.csv")


def test_a_task_learns_a_file_on_hdfs(hdfs, monkeypatch):
    sent = captured_sends(monkeypatch)
    task = Task("h1", "train-file", "acme", {"path": f"{hdfs.base}/data/rows.csv", "label": "y"})
    assert jobs.train_file(Settings(), task, 0, lambda d, t: None) == 7
    assert [e.label for e in sent] == [0, 1, 0, 1, 0, 1, 0]
    assert all(e.id.startswith("rows-") for e in sent)


def test_a_fetched_copy_is_removed_once_read(hdfs):
    with webhdfs.local_file(f"{hdfs.base}/data/rows.csv") as path:
        assert path.read_bytes() == CSV
    assert not path.exists() and not path.parent.exists()
    with webhdfs.local_file("/some/local.csv") as local:  # a local path is itself
        assert str(local) == "/some/local.csv"
