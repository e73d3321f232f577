"""The serving benchmark's load generators (Python and Go) against a small server: every
scheduled request is sent once with its body intact, non-200 answers are errors and not
achieved, 503s are counted as shed, a deadline is stamped in each body and 200s past it are
counted as late, and the percentiles are ordered. Rates are not asserted (machines here are
shared)."""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
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

    async def shed(request):  # half of them shed, as an overloaded replica would
        body = await request.read()
        got.append(body)
        return web.json_response({}, status=503 if orjson.loads(body)["n"] % 2 else 200)

    async def slow(request):
        got.append(await request.read())
        await asyncio.sleep(0.05)
        return web.json_response({})

    async def start():
        app = web.Application()
        app.router.add_post("/ok", ok)
        app.router.add_post("/bad", bad)
        app.router.add_post("/shed", shed)
        app.router.add_post("/slow", slow)
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


def _python(url, bodies, rate, duration, deadline_ms=0.0):
    return run_load(url, bodies, rate, duration, deadline_ms)


def _go(url, bodies, rate, duration, deadline_ms=0.0):
    binary = go_binary(REPO / ".aimass" / "cache")
    if binary is None:
        pytest.skip("no Go toolchain here")
    return go_load(binary, url, bodies, rate, duration, deadline_ms)


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
    assert r["achieved_rps"] == 0 and r["shed"] == 0 and r["p99_ok_ms"] is None


@pytest.mark.parametrize("load", [_python, _go], ids=["python", "go"])
def test_deadlines_are_stamped_and_shed_and_late_answers_counted(server, load):
    url, got = server
    started = time.time()
    r = load(f"{url}/shed", BODIES, 50.0, 0.4, deadline_ms=250.0)
    assert r["requests"] == 20 and r["errors"] == r["shed"] == 8  # n = 1, 3 of each 5 bodies
    assert r["achieved_rps"] < 50 * 0.75 and r["late"] == 0
    sent = [orjson.loads(b) for b in got]
    assert sorted(d.pop("n") for d in sent) == sorted(i % 5 for i in range(20))
    for d in sent:  # the send time plus the budget, the body's own fields kept
        assert started + 0.25 <= d.pop("deadline") <= time.time() + 0.25
        assert set(d) == {"pad"}
    got.clear()
    r = load(f"{url}/slow", BODIES, 50.0, 0.2, deadline_ms=20.0)
    assert r["requests"] == 10 and r["errors"] == 0 and r["late"] == 10
    assert r["p99_ok_ms"] >= 50
