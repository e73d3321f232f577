"""An open-loop HTTP load generator, run in its own process: request i is sent at
t0 + i / rate whether or not earlier ones have come back, and its latency is counted from that
scheduled time (so a stalled server cannot hide its queueing: no coordinated omission).
:func:`go_load` runs the same open loop from a small Go binary (less CPU taken from the server
under test); :func:`in_process` runs the Python one in a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def with_deadline(body: bytes, at: float) -> bytes:
    """The body (a JSON object) with ``"deadline": at`` first, as the Go generator sends it.

    >>> with_deadline(b'{"tenant":"t"}', 12.5)
    b'{"deadline":12.500000,"tenant":"t"}'
    """
    return b'{"deadline":%.6f,' % at + body[1:]


async def _run(url: str, bodies: list[bytes], rate: float, duration: float,
               deadline_ms: float = 0.0) -> dict:
    import time

    import aiohttp

    n = int(rate * duration)
    lat = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    errors = shed = 0
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, headers={
            "Content-Type": "application/json"}) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2

        wall = time.time() - loop.time()  # the loop's clock to Unix seconds

        async def one(i: int) -> None:
            nonlocal errors, shed
            scheduled = t0 + i / rate
            body = bodies[i % len(bodies)]
            if deadline_ms > 0:
                body = with_deadline(body, wall + scheduled + deadline_ms / 1000)
            try:
                async with session.post(url, data=body) as r:
                    await r.read()
                    ok[i] = r.status == 200
                    if r.status != 200:
                        errors += 1
                        shed += r.status == 503
            except Exception:
                errors += 1
            lat[i] = (loop.time() - scheduled) * 1000

        tasks = []
        for i in range(n):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - t0
    done = lat[~np.isnan(lat)]
    answered = lat[ok]
    # every answer's latency counts, but only 200s count as achieved (see loadgen_go)
    return {"offered_rps": rate, "achieved_rps": round((len(done) - errors) / elapsed, 1),
            "p50_ms": round(float(np.percentile(done, 50)), 3),
            "p99_ms": round(float(np.percentile(done, 99)), 3),
            "p999_ms": round(float(np.percentile(done, 99.9)), 3),
            "p99_ok_ms": (round(float(np.percentile(answered, 99)), 3) if len(answered)
                          else None),
            "errors": errors, "shed": shed,
            "late": int((answered > deadline_ms).sum()) if deadline_ms > 0 else 0,
            "requests": n}


def run_load(url: str, bodies: list[bytes], rate: float, duration: float,
             deadline_ms: float = 0.0) -> dict:
    return asyncio.run(_run(url, bodies, rate, duration, deadline_ms))


def in_process(url: str, bodies: list[bytes], rate: float, duration: float,
               deadline_ms: float = 0.0) -> dict:
    """Run :func:`run_load` in a separate process (spawned: no shared state with the caller)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_load, (url, bodies, rate, duration, deadline_ms))


def go_binary(cache_dir: Path) -> Path | None:
    """Build the Go load generator (``ops/bench/loadgen_go``, standard library only) into the
    cache once; None where Go is not installed."""
    go = shutil.which("go")
    if go is None:
        return None
    src = Path(__file__).parent / "loadgen_go"
    out = (cache_dir / "loadgen-go").resolve()
    if not out.exists() or out.stat().st_mtime < (src / "main.go").stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([go, "build", "-o", str(out), "."], cwd=src, check=True,
                       env={**os.environ, "GOFLAGS": "-mod=mod"})
    return out


def go_load(binary: Path, url: str, bodies: list[bytes], rate: float, duration: float,
            deadline_ms: float = 0.0) -> dict:
    """The same measurement as :func:`run_load`, by the Go binary: a Python client at 500
    req/s takes a good part of a core from the server it measures on a 2-core machine."""
    with tempfile.NamedTemporaryFile(suffix=".bodies") as f:
        for b in bodies:
            f.write(len(b).to_bytes(4, "big") + b)
        f.flush()
        extra = [str(deadline_ms)] if deadline_ms > 0 else []
        res = subprocess.run([str(binary), url, f.name, str(rate), str(duration), *extra],
                             capture_output=True, text=True, check=True)
    return json.loads(res.stdout)
