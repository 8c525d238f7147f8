"""The load generator: its own process, so its work never counts against the server's.

    python -m bench.load < plan.json      # prints one JSON object with the measurements

Two kinds of plan, both bounded in count and in time, both to 127.0.0.1 only:

- `http`: a fixed count of requests (after a warm-up) over a fixed number of keep-alive
  connections, each connection sending its next request when the previous answer is complete.
  Latency is send -> last byte of the answer; throughput is measured requests / wall time.
- `sse`: one event stream per path, held open for a fixed window. Each `id: <ms>-<seq>` line's
  arrival time (the system clock, in ms) is compared with the id's ms part, which is the time the
  server appended the entry (the reference server's system clock is this machine's clock), and
  only entries appended inside the window count.

A raw asyncio protocol rather than an HTTP library: the client must stay cheaper than the server
it measures on a 2-core machine. uvloop drives it when installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from .stats import Latency

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class HttpPlan:
    port: int
    requests: tuple[bytes, ...]  # complete HTTP/1.1 requests, sent in turn
    connections: int
    count: int
    warmup: int = 0
    time_limit_s: float = 60.0
    # When set, the measured requests stop once this long has passed since the warm-up ended
    # (`count` is then a cap): every server is measured over the same window, however fast.
    window_s: float | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HttpPlan:
        window = raw.get("window_s")
        return cls(
            port=int(raw["port"]),
            requests=tuple(r.encode("latin-1") for r in raw["requests"]),
            connections=int(raw["connections"]),
            count=int(raw["count"]),
            warmup=int(raw.get("warmup", 0)),
            time_limit_s=float(raw.get("time_limit_s", 60.0)),
            window_s=None if window is None else float(window),
        )


@dataclass(frozen=True)
class SsePlan:
    port: int
    paths: tuple[str, ...]
    headers: dict[str, str]
    settle_s: float  # after every stream is open, before the window starts
    window_s: float
    connect_concurrency: int = 100
    time_limit_s: float = 60.0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SsePlan:
        return cls(
            port=int(raw["port"]),
            paths=tuple(raw["paths"]),
            headers=dict(raw.get("headers", {})),
            settle_s=float(raw["settle_s"]),
            window_s=float(raw["window_s"]),
            connect_concurrency=int(raw.get("connect_concurrency", 100)),
            time_limit_s=float(raw.get("time_limit_s", 60.0)),
        )


def request_text(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> str:
    """One HTTP/1.1 keep-alive request, as text (latin-1) so a plan stays plain JSON."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode("latin-1")


class ResponseParser:
    """Finds where each HTTP/1.1 response ends (Content-Length or chunked), incrementally."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._pos = 0  # parse position inside buf
        self._status = 0
        self._state = "head"
        self._remaining = 0  # body bytes (length) or chunk bytes + CRLF still to come

    def feed(self, data: bytes) -> list[int]:
        """Add bytes; return the status codes of the responses they completed."""
        self.buf += data
        done: list[int] = []
        while True:
            status = self._step()
            if status is None:
                break
            if status:
                done.append(status)
        if self._pos > 65536:
            del self.buf[: self._pos]
            self._pos = 0
        return done

    def _step(self) -> int | None:
        """Advance one state; None when more bytes are needed, a status when a response ended,
        0 when progress was made without ending one."""
        buf = self.buf
        if self._state == "head":
            end = buf.find(b"\r\n\r\n", self._pos)
            if end < 0:
                return None
            head = bytes(buf[self._pos : end]).decode("latin-1")
            self._pos = end + 4
            first, *header_lines = head.split("\r\n")
            self._status = int(first.split(" ", 2)[1])
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self._state = "size"
            else:
                self._remaining = int(headers.get("content-length", "0"))
                self._state = "body"
            return 0
        if self._state == "body":
            take = min(self._remaining, len(buf) - self._pos)
            self._pos += take
            self._remaining -= take
            if self._remaining:
                return None
            self._state = "head"
            return self._status
        if self._state == "size":
            end = buf.find(b"\r\n", self._pos)
            if end < 0:
                return None
            size = int(bytes(buf[self._pos : end]).split(b";")[0], 16)
            self._pos = end + 2
            if size == 0:
                self._state = "trailer"
            else:
                self._remaining = size + 2
                self._state = "chunk"
            return 0
        if self._state == "chunk":
            take = min(self._remaining, len(buf) - self._pos)
            self._pos += take
            self._remaining -= take
            if self._remaining:
                return None
            self._state = "size"
            return 0
        # "trailer": the servers send no trailers, so the last chunk is followed by one empty line
        end = buf.find(b"\r\n", self._pos)
        if end < 0:
            return None
        self._pos = end + 2
        self._state = "head"
        return self._status


class HttpConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        for status in self.parser.feed(data):
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


@dataclass
class HttpTally:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0


async def run_http(plan: HttpPlan) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    conns: list[HttpConnection] = []
    for _ in range(plan.connections):
        _, proto = await loop.create_connection(HttpConnection, LOOPBACK, plan.port)
        conns.append(proto)
    counter = iter(range(plan.warmup + plan.count))
    tally = HttpTally()
    measuring = asyncio.Event()
    start = 0.0

    async def worker(conn: HttpConnection) -> None:
        nonlocal start
        for i in counter:
            if i == plan.warmup and not measuring.is_set():
                start = time.perf_counter()
                measuring.set()
            if (
                plan.window_s is not None
                and measuring.is_set()
                and time.perf_counter() - start >= plan.window_s
            ):
                return
            request = plan.requests[i % len(plan.requests)]
            sent = time.perf_counter()
            try:
                status = await conn.exchange(request)
            except ConnectionError:
                tally.errors += 1
                return
            if i >= plan.warmup:
                tally.latencies_ms.append((time.perf_counter() - sent) * 1000)
                tally.statuses[status] += 1

    timed_out = False
    if plan.warmup == 0:
        start = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker(c) for c in conns)), timeout=plan.time_limit_s
        )
    except TimeoutError:
        timed_out = True
    elapsed = time.perf_counter() - start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    done = len(tally.latencies_ms)
    return {
        "kind": "http",
        "connections": plan.connections,
        "requested": plan.count,
        "warmup": plan.warmup,
        "completed": done,
        "elapsed_s": round(elapsed, 4),
        "rps": round(done / elapsed, 1) if elapsed > 0 else None,
        "latency": Latency.of(tally.latencies_ms).as_dict() if done else None,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": tally.errors,
        "timed_out": timed_out,
    }


class SseConnection(asyncio.Protocol):
    """Reads one event stream; records delivery latency of entries appended inside the window."""

    def __init__(self, window: list[float], samples: list[float]) -> None:
        self.window = window  # [start_ms, end_ms], set by the runner once every stream is open
        self.samples = samples
        self.headers_seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.events = 0
        self._buf = b""
        self._head_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now_ms = time.time() * 1000
        buf = self._buf + data
        if not self._head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            status = int(buf[: buf.find(b"\r\n")].split(b" ", 2)[1])
            self._head_done = True
            if not self.headers_seen.done():
                self.headers_seen.set_result(status)
            buf = buf[end + 4 :]
        lines = buf.split(b"\n")
        self._buf = lines.pop()  # an incomplete last line waits for the next read
        start_ms, end_ms = self.window
        for line in lines:
            if line.startswith(b"id: "):
                self.events += 1
                ms = int(line[4:].split(b"-", 1)[0])
                if start_ms <= ms < end_ms:
                    self.samples.append(now_ms - ms)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.headers_seen.done():
            self.headers_seen.set_exception(ConnectionError("closed before the headers"))


async def run_sse(plan: SsePlan) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    window = [float("inf"), float("inf")]
    samples: list[float] = []
    gate = asyncio.Semaphore(plan.connect_concurrency)
    header_text = "".join(f"{k}: {v}\r\n" for k, v in plan.headers.items())
    opened_at = time.perf_counter()

    async def open_stream(path: str) -> SseConnection | None:
        async with gate:
            try:
                _, conn = await loop.create_connection(
                    lambda: SseConnection(window, samples), LOOPBACK, plan.port
                )
                assert conn.transport is not None
                conn.transport.write(
                    f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nAccept: text/event-stream\r\n"
                    f"{header_text}\r\n".encode("latin-1")
                )
                status = await asyncio.wait_for(conn.headers_seen, timeout=plan.time_limit_s)
            except (OSError, ConnectionError, TimeoutError):
                return None
            return conn if status == 200 else None

    opened = await asyncio.wait_for(
        asyncio.gather(*(open_stream(p) for p in plan.paths)), timeout=plan.time_limit_s
    )
    open_s = time.perf_counter() - opened_at
    streams = [c for c in opened if c is not None]
    await asyncio.sleep(plan.settle_s)
    start_ms = time.time() * 1000
    window[0], window[1] = start_ms, start_ms + plan.window_s * 1000
    await asyncio.sleep(plan.window_s)
    # Entries appended just before the window closed may still be on their way.
    await asyncio.sleep(0.5)
    window[0] = window[1] = float("inf")  # freeze: nothing more is recorded
    still_open = sum(1 for c in streams if c.transport is not None and not c.transport.is_closing())
    for conn in streams:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "kind": "sse",
        "streams": len(plan.paths),
        "opened": len(streams),
        "failed": len(plan.paths) - len(streams),
        "still_open_at_end": still_open,
        "open_s": round(open_s, 3),
        "window_s": plan.window_s,
        "events_in_window": len(samples),
        "events_per_s": round(len(samples) / plan.window_s, 1),
        "latency": Latency.of(samples).as_dict() if samples else None,
    }


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(plan: dict[str, Any]) -> dict[str, Any]:
    _raise_fd_limit()
    kind = plan.get("kind")
    if kind == "http":
        coro: Any = run_http(HttpPlan.from_json(plan))
    elif kind == "sse":
        coro = run_sse(SsePlan.from_json(plan))
    else:
        raise ValueError(f"unknown plan kind {kind!r}")
    try:
        import uvloop
    except ImportError:
        return dict(asyncio.run(coro))
    return dict(uvloop.run(coro))


def main() -> int:
    plan = json.loads(sys.stdin.read())
    print(json.dumps(run(plan)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
