"""What every route of the serving API shares: JSON answers, errors that name the field, the
body read within a time limit, and the caller's key on the request."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from streams.contracts.events import parse_object
from streams.serving.access import Principal

PRINCIPAL = web.RequestKey("principal", Principal)  # the caller's key, set by the middleware


def _error(status: int, message: str, field: str | None = None,
           retry_after: int | None = None) -> web.Response:
    body = {"error": message, **({"field": field} if field else {})}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers=headers)


def _ok(body: dict, status: int = 200) -> web.Response:
    return _ok_encoded(orjson.dumps(body), status)


def _ok_encoded(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


BODY_TIMEOUT = 10.0  # seconds a client may take to send its body


async def _read(request: web.Request) -> bytes:
    """The body, within :data:`BODY_TIMEOUT` (a slow client gets a 408)."""
    try:
        return await asyncio.wait_for(request.read(), BODY_TIMEOUT)
    except TimeoutError:
        raise web.HTTPRequestTimeout(reason=f"the body took longer than {BODY_TIMEOUT:.0f} s") \
            from None


async def _body(request: web.Request) -> dict:
    return parse_object(await _read(request), "body")


