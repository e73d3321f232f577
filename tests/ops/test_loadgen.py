"""The serving benchmark's load generators (Python and Go) against a small server: every
scheduled request is sent once with its body intact, non-200 answers are errors, and the
percentiles are ordered. Rates are not asserted (machines here are shared)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiohttp import web

from ops.bench.loadgen import go_binary, go_load, run_load
from tests.conftest import REPO, free_port

BODIES = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i * 100)) for i in range(5)]


@pytest.fixture
def server():
    got: list[bytes] = []
    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def ok(request):
        got.append(await request.read())
        return web.json_response({})

    async def bad(request):
        got.append(await request.read())
        return web.json_response({"error": "no"}, status=500)

    async def start():
        app = web.Application()
        app.router.add_post("/ok", ok)
        app.router.add_post("/bad", bad)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        return runner

    def run():
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{port}", got
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def _python(url, bodies, rate, duration):
    return run_load(url, bodies, rate, duration)


def _go(url, bodies, rate, duration):
    binary = go_binary(REPO / ".aimass" / "cache")
    if binary is None:
        pytest.skip("no Go toolchain here")
    return go_load(binary, url, bodies, rate, duration)


@pytest.mark.parametrize("load", [_python, _go], ids=["python", "go"])
def test_every_scheduled_request_is_sent_once_and_counted(server, load):
    url, got = server
    r = load(f"{url}/ok", BODIES, 50.0, 1.0)
    assert r["requests"] == 50 and r["errors"] == 0
    assert sorted(got) == sorted(BODIES[i % len(BODIES)] for i in range(50))
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"]
    got.clear()
    r = load(f"{url}/bad", BODIES, 50.0, 0.4)
    assert r["requests"] == 20 and r["errors"] == 20 and len(got) == 20
