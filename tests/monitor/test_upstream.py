"""The proxy's upstream client against a raw asyncio server: keep-alive reuse, a stale idle
connection, chunked answers, and no second attempt for a request that is not idempotent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from monitor.upstream import Pool, UpstreamError

DEADLINE_S = 10.0
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


def run(handler: Handler, client: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.wait_for(client(f"http://127.0.0.1:{port}/base"), DEADLINE_S)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


async def body_of(pool: Pool, method: str = "GET", body: bytes = b"") -> tuple[int, bytes]:
    response = await pool.request(method, b"/x?a=1", [(b"x-thing", b"1")], body)
    data = b"".join([chunk async for chunk in response.chunks()])
    await response.aclose()
    return response.status, data


def test_requests_reuse_a_connection_and_chunked_answers_are_read() -> None:
    connections: list[int] = []
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            await writer.drain()
        writer.close()

    async def client(url: str) -> None:
        pool = Pool(url)
        assert await body_of(pool) == (200, b"abcde")
        assert await body_of(pool, "POST", b'{"a": 1}') == (200, b"abcde")
        await pool.aclose()

    run(handler, client)
    assert len(connections) == 1
    first, second = seen
    assert first.startswith(b"GET /base/x?a=1 HTTP/1.1\r\n")
    assert b"x-thing: 1" in first
    assert second.startswith(b"POST /base/x?a=1 ") and second.endswith(b'{"a": 1}')
    assert b"content-length: 8" in second.lower()


def test_a_stale_idle_connection_is_replaced() -> None:
    """The upstream closes each connection after one answer without saying so."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def client(url: str) -> None:
        pool = Pool(url)
        for _ in range(3):
            assert await body_of(pool) == (200, b"ok")
            await asyncio.sleep(0.05)  # the close reaches the idle connection
        await pool.aclose()

    run(handler, client)
    assert len(connections) == 3


def test_a_post_is_not_sent_twice_when_a_reused_connection_fails() -> None:
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Keep the connection looking alive, then drop the next request unanswered.
        with contextlib.suppress(asyncio.IncompleteReadError):
            requests.append(await read_request(reader))
        writer.close()

    async def client(url: str) -> None:
        pool = Pool(url)
        assert await body_of(pool) == (200, b"ok")
        with pytest.raises(UpstreamError):
            await body_of(pool, "POST", b"{}")
        await pool.aclose()

    run(handler, client)
    assert [r.split(b" ")[0] for r in requests] == [b"GET", b"POST"]  # the POST went once


def test_a_dead_upstream_is_an_upstream_error() -> None:
    async def client(url: str) -> None:
        pool = Pool(url.replace("/base", ""), connect_timeout_s=2)
        with pytest.raises(UpstreamError):
            await pool.request("GET", b"/", [], b"")

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(client(f"http://127.0.0.1:{port}/base"), DEADLINE_S)

    asyncio.run(main())
