"""Files on HDFS, read over WebHDFS (the namenode's REST API, no Hadoop client needed):
``hdfs://namenode:9870/data/clicks.csv`` (or ``webhdfs://``) is fetched with ``op=OPEN``,
following the namenode's redirect to a datanode, into a local temporary file that the usual
file readers (:mod:`streams.sources.files`) take. ``user.name`` is the HDFS user
(``AIMASS_HDFS_USER``, default the process's).

>>> split_url("hdfs://nn:9870/data/clicks.csv")
('http://nn:9870', '/data/clicks.csv')
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

SCHEMES = ("hdfs", "webhdfs")


def is_hdfs(path: str) -> bool:
    return urllib.parse.urlsplit(str(path)).scheme in SCHEMES


def split_url(url: str) -> tuple[str, str]:
    """(the namenode's HTTP base, the file's HDFS path)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in SCHEMES or not u.hostname or not u.path.startswith("/"):
        raise ValueError(f"{url}: not an HDFS URL (hdfs://namenode:port/path)")
    return f"http://{u.hostname}:{u.port or 9870}", u.path


def fetch(url: str, into: Path | None = None, timeout: float = 60.0) -> Path:
    """Download the HDFS file at ``url`` to a local file (named as the file, so its type is
    known); ValueError names what went wrong (no such file, namenode unreachable)."""
    base, path = split_url(url)
    user = os.environ.get("AIMASS_HDFS_USER") or getpass.getuser()
    query = urllib.parse.urlencode({"op": "OPEN", "user.name": user})
    target = (into or Path(tempfile.mkdtemp(prefix="aimass-hdfs-"))) / Path(path).name
    try:
        with urllib.request.urlopen(f"{base}/webhdfs/v1{urllib.parse.quote(path)}?{query}",
                                    timeout=timeout) as r, open(target, "wb") as out:
            shutil.copyfileobj(r, out, 1 << 20)  # the redirect to a datanode is followed
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{url}: HDFS answered {exc.code} ({exc.reason})") from None
    except OSError as exc:
        raise ValueError(f"{url}: cannot reach the namenode: {exc}") from None
    return target


@contextlib.contextmanager
def local_file(path: str):
    """``path`` as a local file: itself, or for an HDFS URL a fetched copy, removed after."""
    if not is_hdfs(path):
        yield Path(path)
        return
    copy = fetch(path)
    try:
        yield copy
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)
