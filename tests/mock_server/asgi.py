"""One request to an ASGI app from a synchronous test, through httpx's ASGI transport.

The transport does not stream, so these tests cover request/response behaviour only; streams are
tested against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.types import ASGIApp

UNSET: Any = object()  # "send no JSON body", distinct from sending JSON null


def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: Any = None,
    json: Any = UNSET,
    content: bytes | None = None,
    params: Any = None,
) -> httpx.Response:
    extra: dict[str, Any] = {}
    if json is not UNSET:
        extra["json"] = json
    if content is not None:
        extra["content"] = content

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.request(method, path, params=params, headers=headers, **extra)

    return asyncio.run(go())
