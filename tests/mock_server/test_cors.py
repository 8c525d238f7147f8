"""OpenCORS answers exactly as Starlette's CORSMiddleware with the server's settings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.app import EXPOSED_HEADERS
from mock_server.cors import OpenCORS, with_vary_origin

SETTINGS: dict[str, Any] = {
    "allow_origins": ["*"],
    "allow_methods": ["*"],
    "allow_headers": ["*"],
    "expose_headers": EXPOSED_HEADERS,
    "max_age": 600,
}


def endpoint(headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def answer(middleware: type[CORSMiddleware], app: ASGIApp, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(app, **SETTINGS)(dict(scope), receive, send))
    return sent


def scope(method: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": "/x",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
    }


RESPONSES = [
    [(b"content-type", b"application/json")],
    [(b"content-type", b"application/json"), (b"vary", b"Accept-Encoding")],
    [(b"vary", b"Accept"), (b"x-a", b"1"), (b"vary", b"Cookie")],
]
REQUESTS = [
    ("GET", []),
    ("POST", [(b"authorization", b"Bearer k")]),
    ("GET", [(b"origin", b"http://localhost:5173")]),
    (
        "OPTIONS",
        [
            (b"origin", b"http://localhost:5173"),
            (b"access-control-request-method", b"POST"),
            (b"access-control-request-headers", b"authorization, content-type"),
        ],
    ),
]


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize(("method", "headers"), REQUESTS)
def test_the_same_answer_as_starlette(
    response: list[tuple[bytes, bytes]], method: str, headers: list[tuple[bytes, bytes]]
) -> None:
    app = endpoint(response)
    request = scope(method, headers)
    assert answer(OpenCORS, app, request) == answer(CORSMiddleware, app, request)


def test_vary_joins_every_existing_value_at_the_first_place() -> None:
    headers = [(b"vary", b"Accept"), (b"x-a", b"1"), (b"vary", b"Cookie")]
    assert with_vary_origin(headers) == [(b"vary", b"Accept, Cookie, Origin"), (b"x-a", b"1")]
    assert with_vary_origin([]) == [(b"vary", b"Origin")]
