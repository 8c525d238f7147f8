"""The proxy's HTTP/1.1 client to the upstream: keep-alive connections in a pool, h11 for the
framing, asyncio streams underneath.

Why not httpx: under load its connection pool checks every pooled connection's socket on every
request, which cost the monitor most of its time (scenario 7 of the bench); the proxy needs only
one thing, send a request and stream the answer back, so it does only that.

An idle connection the upstream has closed is noticed before reuse (its reader saw EOF); if a
reused connection still fails before any byte of the answer arrived, an idempotent request is
sent once more on a new connection, as browsers do.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

Headers = list[tuple[bytes, bytes]]
READ_SIZE = 65536
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class UpstreamError(Exception):
    pass


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class Response:
    """An answer being read: status and headers at once, the body with `chunks()`."""

    def __init__(self, pool: Pool, conn: _Connection, head: h11.Response) -> None:
        self.status = head.status_code
        self.headers: Headers = [(bytes(k), bytes(v)) for k, v in head.headers]
        self._pool = pool
        self._conn: _Connection | None = conn
        self._done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        assert conn is not None
        while not self._done:
            event = conn.h11.next_event()
            if event is h11.NEED_DATA:
                data = await conn.reader.read(READ_SIZE)
                try:
                    conn.h11.receive_data(data)
                except h11.RemoteProtocolError as error:
                    raise UpstreamError(f"malformed answer: {error}") from None
                continue
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._done = True
            else:
                raise UpstreamError(f"unexpected {type(event).__name__} in the answer")

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if (
            self._done
            and conn.h11.our_state is h11.DONE
            and conn.h11.their_state is h11.DONE
            and conn.usable()
        ):
            conn.h11.start_next_cycle()
            self._pool.release(conn)
        else:
            conn.close()


class Pool:
    def __init__(self, url: str, *, max_idle: int = 100, connect_timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, not {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/").encode()
        default = 443 if parts.scheme == "https" else 80
        authority = self.host if ":" not in self.host else f"[{self.host}]"
        self.host_header = (
            authority if self.port == default else f"{authority}:{self.port}"
        ).encode()
        self.max_idle = max_idle
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[_Connection] = []
        self._ssl = ssl.create_default_context() if self.scheme == "https" else None

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                    limit=READ_SIZE * 4,
                ),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as error:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {error!r}") from None
        return _Connection(reader, writer)

    def release(self, conn: _Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    async def request(self, method: str, target: bytes, headers: Headers, body: bytes) -> Response:
        """Send a request (`target`: path and query below the upstream's base path)."""
        head = [(k, v) for k, v in headers if k.lower() not in (b"host", b"content-length")]
        head.insert(0, (b"host", self.host_header))
        if body or any(k.lower() == b"content-length" for k, _ in headers):
            head.append((b"content-length", str(len(body)).encode()))
        request = h11.Request(method=method, target=self.base_path + target, headers=head)
        reused = self._take_idle()
        conn = reused or await self._connect()
        try:
            return await self._exchange(conn, request, body)
        except (UpstreamError, OSError, h11.ProtocolError) as error:
            conn.close()
            if reused is None or method not in IDEMPOTENT:
                raise UpstreamError(str(error) or type(error).__name__) from None
        conn = await self._connect()  # the reused connection was stale: once more, afresh
        try:
            return await self._exchange(conn, request, body)
        except (UpstreamError, OSError, h11.ProtocolError) as error:
            conn.close()
            raise UpstreamError(str(error) or type(error).__name__) from None

    async def _exchange(self, conn: _Connection, request: h11.Request, body: bytes) -> Response:
        out = conn.h11.send(request) or b""
        if body:
            out += conn.h11.send(h11.Data(data=body)) or b""
        out += conn.h11.send(h11.EndOfMessage()) or b""
        conn.writer.write(out)
        await conn.writer.drain()
        while True:
            event = conn.h11.next_event()
            if event is h11.NEED_DATA:
                data = await conn.reader.read(READ_SIZE)
                if not data and conn.h11.their_state is h11.SEND_RESPONSE:
                    raise UpstreamError("the upstream closed the connection without an answer")
                conn.h11.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                return Response(self, conn, event)
            raise UpstreamError(f"unexpected {type(event).__name__} instead of an answer")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
