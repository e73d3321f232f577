"""A throw-away single-node HDFS on loopback, for the WebHDFS tests and for trying ``aimass
train hdfs://...`` by hand: Hadoop's own ``MiniDFSCluster`` (a namenode and a datanode in one
JVM, ``org.apache.hadoop.test.MiniDFSClusterManager``) from the shaded
``org.apache.hadoop:hadoop-client-minicluster`` jars that Maven resolves (ops/hdfs/pom.xml),
with WebHDFS on ``http_port``. Nothing native, no Docker. ``stop()`` ends it and removes its
storage.

>>> hdfs_url(19870, "/data/clicks.csv")
'hdfs://127.0.0.1:19870/data/clicks.csv'
"""

from __future__ import annotations

import getpass
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .maven import resolve_jars
from .proc import ServiceError, check_port_free, spawn, stop_pid, wait_until

HADOOP_VERSION = "3.4.1"
POM = Path(__file__).resolve().parent.parent / "hdfs" / "pom.xml"
MAIN = "org.apache.hadoop.test.MiniDFSClusterManager"


def hdfs_url(http_port: int, path: str) -> str:
    return f"hdfs://127.0.0.1:{http_port}{path}"


@dataclass
class HDFS:
    http_port: int
    pid: int
    home: Path
    user: str = field(default_factory=getpass.getuser)  # the superuser: it started the JVM

    def url(self, path: str) -> str:
        return hdfs_url(self.http_port, path)

    def _request(self, method: str, path: str, op: str, **params) -> urllib.request.Request:
        q = urllib.parse.urlencode({"op": op, "user.name": self.user, **params})
        return urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/webhdfs/v1{urllib.parse.quote(path)}?{q}",
            method=method)

    def _call(self, method: str, path: str, op: str, **params) -> str:
        with urllib.request.urlopen(self._request(method, path, op, **params), timeout=60) as r:
            return r.read().decode()

    def put(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` (parents made), as a Hadoop client does over WebHDFS:
        the namenode names a datanode (a redirect), the bytes go there."""
        self._call("PUT", str(Path(path).parent), "MKDIRS")
        req = self._request("PUT", path, "CREATE", overwrite="true")
        try:  # urllib does not follow a redirect of a PUT: it raises it
            urllib.request.urlopen(req, timeout=60)
            raise ServiceError("the namenode named no datanode for CREATE")
        except urllib.error.HTTPError as exc:
            if exc.code != 307:
                raise
            datanode = exc.headers["Location"]
        urllib.request.urlopen(urllib.request.Request(datanode, data=data, method="PUT"),
                               timeout=60).read()

    def stop(self) -> None:
        stop_pid(self.pid)
        shutil.rmtree(self.home, ignore_errors=True)


def ensure_jars(cache_dir: Path, version: str = HADOOP_VERSION) -> Path:
    return resolve_jars(POM, cache_dir / f"hadoop-minicluster-{version}",
                        f"hadoop-client-minicluster-{version}.jar",
                        f"org.apache.hadoop:hadoop-client-minicluster:{version}",
                        {"hadoop.version": version})


def start_hdfs(http_port: int, cache_dir: Path, version: str = HADOOP_VERSION) -> HDFS:
    """Format and start a namenode and a datanode; return once WebHDFS answers."""
    check_port_free(http_port, "the HDFS namenode's HTTP (WebHDFS)", "http_port")
    java = shutil.which("java")
    if not java:
        raise ServiceError("HDFS needs Java (Debian: apt-get install -y openjdk-17-jre-headless).")
    jars = ensure_jars(cache_dir, version)
    home = Path(tempfile.mkdtemp(prefix="aimass-hdfs-"))
    log = home / "hdfs.log"
    pid = spawn([java, "-Xmx512m", "-Djava.awt.headless=true", "-cp", f"{jars.resolve()}/*",
                 f"-Dtest.build.data={home / 'data'}", MAIN, "-format", "-datanodes", "1",
                 "-httpport", str(http_port), "-writeDetails", str(home / "details.json")], log)
    server = HDFS(http_port, pid, home)
    try:
        wait_until(lambda: _answers(server), pid, 120, "HDFS", log)
    except BaseException:
        server.stop()
        raise
    return server


def _answers(server: HDFS) -> bool:
    if not (server.home / "details.json").exists():  # written once the cluster is up
        return False
    try:
        return "FileStatuses" in server._call("GET", "/", "LISTSTATUS")
    except OSError:
        return False
