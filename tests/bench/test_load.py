"""The load generator: where each HTTP/1.1 response ends, however its bytes arrive; a run's
count and window."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.load import HttpPlan, ResponseParser, request_text, run_http

FIXED = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: application/json\r\n\r\n[1,2]"
CHUNKED = (
    b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n"
    b"a;ext=1\r\n0123456789\r\n"
    b"0\r\n\r\n"
)
EMPTY = b"HTTP/1.1 204 No Content\r\n\r\n"


def test_one_response_in_one_read() -> None:
    assert ResponseParser().feed(FIXED) == [200]


def test_pipelined_responses_of_every_framing_in_one_read() -> None:
    assert ResponseParser().feed(FIXED + CHUNKED + EMPTY + FIXED) == [200, 404, 204, 200]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_responses_split_at_any_byte(size: int) -> None:
    data = FIXED + CHUNKED + FIXED
    parser = ResponseParser()
    done: list[int] = []
    for i in range(0, len(data), size):
        done += parser.feed(data[i : i + size])
    assert done == [200, 404, 200]


def test_an_incomplete_body_is_not_a_response() -> None:
    parser = ResponseParser()
    assert parser.feed(FIXED[:-1]) == []
    assert parser.feed(FIXED[-1:]) == [200]


def test_a_long_run_does_not_keep_every_byte() -> None:
    parser = ResponseParser()
    for _ in range(2000):
        assert parser.feed(FIXED) == [200]
    assert len(parser.buf) < 2 * 65536


def test_request_text_is_a_keep_alive_request_with_a_length_for_bodies() -> None:
    get = request_text("GET", "/x", {"Authorization": "Bearer k"})
    assert get == "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n\r\n"
    post = request_text("POST", "/y", body=b'{"a":1}')
    assert post.endswith('Content-Length: 7\r\n\r\n{"a":1}')
    assert "Content-Length: 0" in request_text("POST", "/y")


def test_a_plan_round_trips_through_json_text() -> None:
    plan = HttpPlan.from_json(
        {"port": 1, "requests": [request_text("GET", "/x")], "connections": 2, "count": 10}
    )
    assert plan.requests[0].startswith(b"GET /x HTTP/1.1\r\n")
    assert (plan.warmup, plan.time_limit_s) == (0, 60.0)


class _Ok(asyncio.Protocol):
    """Answers every request (all bodiless GETs here) with an empty 200."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for _ in range(data.count(b"\r\n\r\n")):
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


async def _against_ok_server(raw_plan: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Ok, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        plan = {"port": port, "requests": [request_text("GET", "/x")], **raw_plan}
        return await run_http(HttpPlan.from_json(plan))
    finally:
        server.close()
        await server.wait_closed()


def test_a_run_without_a_window_sends_its_count() -> None:
    result = asyncio.run(_against_ok_server({"connections": 3, "count": 50, "warmup": 5}))
    assert result["completed"] == 50 and result["statuses"] == {"200": 50}
    assert not result["timed_out"]


def test_a_run_with_a_window_stops_measuring_when_it_closes() -> None:
    plan = {"connections": 3, "count": 10**9, "warmup": 5, "window_s": 0.3, "time_limit_s": 20}
    result = asyncio.run(_against_ok_server(plan))
    assert not result["timed_out"], "the window, not the time limit, ended the run"
    assert 0.3 <= result["elapsed_s"] < 5
    assert 0 < result["completed"] < 10**9
