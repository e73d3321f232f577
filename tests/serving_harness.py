"""Run a serving app on a free port in a background thread, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.error
import urllib.request

import orjson
from aiohttp import web


class ServerThread(threading.Thread):
    def __init__(self, app: web.Application):
        super().__init__(daemon=True)
        self.app = app
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()

    def run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> ServerThread:
        self.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def call(url: str, body=None, raw: bytes | None = None, timeout: float = 10.0):
    """(status, decoded JSON body) for GET (no body) or POST."""
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        payload = e.read()
        try:
            return e.code, orjson.loads(payload)
        except orjson.JSONDecodeError:
            return e.code, {"raw": payload.decode(errors="replace")}


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 in {timeout}s")
