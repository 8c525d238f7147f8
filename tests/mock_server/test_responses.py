"""The request path's shortcuts answer as the Starlette code they replace.

`mock_server.responses.JSONResponse` renders the bytes and headers of Starlette's; `read_body` and
`bearer_token` read a request as `Request.body()` and `Request.headers` do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette import responses
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from mock_server.apis.base import bearer_token, read_body
from mock_server.responses import JSONResponse

CONTENTS: list[Any] = [
    {"job_id": "j", "status": "pending"},
    {"text": "hé ✓ \U0001f600", "n": [1, 2.5, -0.0, None, True, 10**30]},
    [],
    None,
    "plain",
    {"nested": {"a": [{"b": {}}]}},
]


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("status_code", [200, 201, 204, 304, 400, 404, 100, 500])
def test_json_responses_match_starlettes(content: Any, status_code: int) -> None:
    ours = JSONResponse(content, status_code=status_code)
    theirs = responses.JSONResponse(content, status_code=status_code)
    assert (ours.body, ours.raw_headers, ours.status_code) == (
        theirs.body,
        theirs.raw_headers,
        theirs.status_code,
    )
    assert ours.background is None
    assert ours.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Allow": "GET, POST"}},
        {"headers": {"Retry-After": "3", "Content-Type": "application/problem+json"}},
        {"headers": {}},
        {"media_type": "application/vnd.x+json"},
        {"background": BackgroundTask(lambda: None)},
    ],
)
def test_json_responses_with_options_match_starlettes(kwargs: dict[str, Any]) -> None:
    ours = JSONResponse({"a": 1}, status_code=429, **kwargs)
    theirs = responses.JSONResponse({"a": 1}, status_code=429, **kwargs)
    assert (ours.body, ours.raw_headers) == (theirs.body, theirs.raw_headers)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1: object()}])
def test_json_responses_refuse_what_starlettes_refuse(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as theirs:
        responses.JSONResponse({"x": bad})
    with pytest.raises(theirs.type):
        JSONResponse({"x": bad})


def request(headers: list[tuple[bytes, bytes]], messages: list[Message]) -> Request:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "http.request", "body": b'{"a": 1}'}],
        [{"type": "http.request", "body": b"", "more_body": False}],
        [{"type": "http.request"}],
        [
            {"type": "http.request", "body": b'{"a"', "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b": 1}", "more_body": False},
        ],
    ],
)
def test_read_body_reads_what_request_body_reads(messages: list[Message]) -> None:
    async def both() -> tuple[bytes, bytes, bytes]:
        ours = request([], messages)
        body = await read_body(ours)
        return body, await ours.body(), await request([], messages).body()

    body, again, theirs = asyncio.run(both())
    assert body == again == theirs


def test_read_body_raises_client_disconnect_as_request_body_does() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(ClientDisconnect):
        asyncio.run(request([], messages).body())
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(request([], messages)))


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"authorization", b"bearer  abc ")], "abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")], "a"),
        ([(b"x-other", b"Bearer abc")], None),
        ([(b"authorization", "Bearer é".encode("latin-1"))], "é"),
        ([], None),
    ],
)
def test_bearer_token(headers: list[tuple[bytes, bytes]], token: str | None) -> None:
    req = request(headers, [])
    assert bearer_token(req) == token
    starlette_header = req.headers.get("authorization", "")
    scheme, _, value = starlette_header.partition(" ")
    assert token == (value.strip() if scheme.lower() == "bearer" and value.strip() else None)
