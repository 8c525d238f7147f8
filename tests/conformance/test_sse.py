"""Tolerant reading against a real loopback server that writes given bytes in given chunks:
every line-end convention, a byte order mark, `retry:`/`event:`/comment lines, multi-line data,
events and UTF-8 characters split anywhere; gzip, deflate and chunked JSON bodies; and deadlines
that hold however busily a server keeps a stream alive. (httpx's ASGI transport does not stream,
so only a socket shows how the client meets chunk boundaries.)"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conformance.checks import ConformanceFailure
from conformance.clients.http import ApiClient, Recorder
from conformance.clients.sse import LineDecoder, SseComment, SseEvent, decode, parse
from conformance.spec_check import ResponseSpec

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "loopback", "version": "1"},
    "paths": {
        "/stream": {
            "get": {
                "operationId": "stream",
                "responses": {
                    "200": {
                        "description": "events",
                        "content": {"text/event-stream": {"x-sse-data": {"type": "object"}}},
                    }
                },
            }
        },
        "/job": {
            "get": {
                "operationId": "job",
                "responses": {
                    "200": {
                        "description": "a job",
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["status"]}
                            }
                        },
                    }
                },
            }
        },
    },
}

Script = Callable[[socket.socket, threading.Event], None]


class LoopbackServer:
    """Answers every request on 127.0.0.1 with `script`, which writes the raw response."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.stopping = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._serve, daemon=True)
        self.accepting.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            # OSError: the client hung up, which is what the deadline tests make it do.
            with contextlib.suppress(OSError):
                self.script(conn, self.stopping)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.accepting.join(5)
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def start(script: Script) -> LoopbackServer:
        servers.append(LoopbackServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def head(*headers: str, status: str = "200 OK") -> bytes:
    return "\r\n".join([f"HTTP/1.1 {status}", *headers, "", ""]).encode()


def writes(
    headers: bytes, body: bytes, size: int, delay_s: float = 0.001, chunked: bool = False
) -> Script:
    """Send `body` in pieces of `size` bytes (each its own TCP segment), then close."""

    def script(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(headers)
        for start in range(0, len(body), size):
            piece = body[start : start + size]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            time.sleep(delay_s)
        if chunked:
            conn.sendall(b"0\r\n\r\n")

    return script


@pytest.fixture
def client() -> Iterator[Callable[..., ApiClient]]:
    made: list[ApiClient] = []

    def make(url: str, **kwargs: Any) -> ApiClient:
        spec = ResponseSpec.from_document("loopback", SPEC)
        made.append(ApiClient(url, spec, Recorder(), **kwargs))
        return made[-1]

    yield make
    for api in made:
        api.close()


# One text, written with each line-end convention: every field the standard knows, a comment,
# multi-line data, characters of 2, 3 and 4 UTF-8 bytes, and an id-less event.
LINES = [
    ": hello",
    "retry: 1500",
    "id: 1-0",
    'data: {"text": "café € 😀",',
    'data:  "n": 1}',
    "",
    ": ping",
    "event: progress",
    "id: 1-1",
    'data:{"progress": 0.5}',
    "",
    "",
    'data: {"type": "complete"}',
    "",
]
EXPECTED = [
    SseComment("hello"),
    SseEvent("1-0", '{"text": "café € 😀",\n "n": 1}', None, 1500),
    SseComment("ping"),
    SseEvent("1-1", '{"progress": 0.5}', "progress"),
    SseEvent(None, '{"type": "complete"}'),
]
FRAMINGS = {
    "lf": "\n".join(LINES) + "\n",
    "crlf": "\r\n".join(LINES) + "\r\n",
    "cr": "\r".join(LINES) + "\r",
    "bom-mixed": "\ufeff"
    + "".join(line + ("\r\n", "\n", "\r")[i % 3] for i, line in enumerate(LINES)),
}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_the_line_decoder_survives_every_split(framing: str) -> None:
    raw = FRAMINGS[framing].encode()
    assert list(parse(decode([raw]))) == EXPECTED
    for cut in range(len(raw) + 1):
        assert list(parse(decode([raw[:cut], raw[cut:]]))) == EXPECTED, cut


def test_a_cr_ending_a_chunk_ends_the_line_at_once_and_a_following_lf_is_not_a_blank_line() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"data: {}\r") == ["data: {}"]
    assert decoder.feed(b"\n") == []  # the rest of that CRLF, not a blank line
    assert decoder.feed(b"\r") == [""]  # this one is a blank line: it dispatches
    assert decoder.feed(b"\n: x\n") == [": x"]


def test_a_bom_is_dropped_only_at_the_start() -> None:
    decoder = LineDecoder()
    bom = "\ufeff".encode()
    assert decoder.feed(bom[:1]) == [] and decoder.feed(bom[1:] + b"a\n") == ["a"]
    assert decoder.feed(bom + b"b\n") == ["\ufeffb"]


def test_an_unterminated_last_event_is_discarded() -> None:
    assert list(parse(decode([b'data: {"a": 1}\n\ndata: {"b": 2}']))) == [
        SseEvent(None, '{"a": 1}')
    ]


@pytest.mark.parametrize("size", [1, 3, 7])
@pytest.mark.parametrize("framing", sorted(FRAMINGS))
@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_a_stream_is_read_whatever_its_framing_and_chunking(
    client: Callable[..., ApiClient],
    serve: Callable[[Script], LoopbackServer],
    framing: str,
    size: int,
    chunked: bool,
) -> None:
    coding = "Transfer-Encoding: chunked" if chunked else "Connection: close"
    headers = head(
        "Content-Type: text/event-stream; charset=utf-8", "Cache-Control: no-cache", coding
    )
    server = serve(writes(headers, FRAMINGS[framing].encode(), size, chunked=chunked))
    api = client(server.url)
    with api.stream("stream", "/stream", read_timeout_s=5) as stream:
        assert list(stream) == EXPECTED
        assert stream.ended
    recorded = api.recorder.exchanges[-1]
    assert 'id: 1-1\nevent: progress\ndata: {"progress": 0.5}' in recorded.response_body


JOB = {"status": "done", "extra": {"unknown": ["fields", "are", "fine"]}, "text": "é"}


@pytest.mark.parametrize(
    ("content_type", "encoding", "body"),
    [
        ("application/json", None, json.dumps(JOB).encode()),
        ("application/json; charset=utf-8", None, json.dumps(JOB, indent=4).encode()),
        ("Application/JSON;charset=UTF-8", None, json.dumps(JOB, separators=(",", ":")).encode()),
        ("application/json", None, json.dumps(JOB, ensure_ascii=False).encode()),
        ("application/json", None, b"\r\n\t " + json.dumps(JOB).encode() + b" \n"),
        # mtime=0: the same bytes in every process, so xdist workers collect the same ids.
        ("application/json", "gzip", gzip.compress(json.dumps(JOB).encode(), mtime=0)),
        ("application/json", "deflate", zlib.compress(json.dumps(JOB).encode())),
    ],
    ids=["compact", "indented", "no-spaces", "utf-8", "padded", "gzip", "deflate"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_json_body_is_read_whatever_its_formatting_and_coding(
    client: Callable[..., ApiClient],
    serve: Callable[[Script], LoopbackServer],
    content_type: str,
    encoding: str | None,
    body: bytes,
    chunked: bool,
) -> None:
    headers = [f"Content-Type: {content_type}"]
    headers.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    if encoding is not None:
        headers.append(f"Content-Encoding: {encoding}")
    server = serve(writes(head(*headers), body, 5, delay_s=0.0005, chunked=chunked))
    response = client(server.url).request("job", "GET", "/job")
    assert response.json() == JOB
    assert "content-encoding" not in response.headers  # the body handed on is decoded


def test_a_body_declared_json_that_is_not_fails(
    client: Callable[..., ApiClient], serve: Callable[[Script], LoopbackServer]
) -> None:
    body = b"<html>oops</html>"
    headers = head("Content-Type: application/json", f"Content-Length: {len(body)}")
    server = serve(writes(headers, body, 100))
    with pytest.raises(ConformanceFailure, match="not JSON"):
        client(server.url).request("job", "GET", "/job")


def forever(headers: bytes, item: bytes, every_s: float) -> Script:
    def script(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(headers)
        while not stopping.is_set():
            conn.sendall(item)
            time.sleep(every_s)

    return script


SSE = head("Content-Type: text/event-stream", "Connection: close")


@pytest.mark.parametrize(
    ("item", "shows"),
    [(b": ping\n\n", ": ping"), (b'id: 1-0\ndata: {"type": "progress"}\n\n', "progress")],
    ids=["keepalives-only", "endless-non-terminal-events"],
)
def test_a_stream_that_never_ends_fails_at_its_deadline(
    client: Callable[..., ApiClient],
    serve: Callable[[Script], LoopbackServer],
    item: bytes,
    shows: str,
) -> None:
    server = serve(forever(SSE, item, 0.02))
    api = client(server.url, stream_timeout_s=0.6)
    started = time.monotonic()
    with (
        pytest.raises(ConformanceFailure) as failure,
        api.stream("stream", "/stream", read_timeout_s=5) as stream,
    ):
        for _ in stream.awaiting("a terminal event"):
            pass
    assert time.monotonic() - started < 3
    assert failure.value.title == "stream: awaited a terminal event within 0.6 s"
    assert failure.value.detail.startswith("got: ") and shows in failure.value.detail


def test_a_trickle_of_bytes_cannot_outlast_the_deadline(
    client: Callable[..., ApiClient],
    serve: Callable[[Script], LoopbackServer],
) -> None:
    # One byte at a time, never a complete line: no item ever arrives to check the clock on.
    server = serve(forever(SSE, b"x", 0.01))
    api = client(server.url)
    started = time.monotonic()
    with (
        pytest.raises(ConformanceFailure, match=r"awaited the end of the stream within 0\.5 s"),
        api.stream("stream", "/stream", timeout_s=0.5) as stream,
    ):
        list(stream)
    assert time.monotonic() - started < 3


def test_a_silent_stream_times_out_within_the_stream_deadline(
    client: Callable[..., ApiClient],
    serve: Callable[[Script], LoopbackServer],
) -> None:
    server = serve(forever(SSE, b"", 0.05))
    api = client(server.url, stream_timeout_s=0.4)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout), api.stream("stream", "/stream", read_timeout_s=30) as s:
        list(s)
    assert time.monotonic() - started < 3


def test_the_deadline_counts_from_opening_the_stream(
    client: Callable[..., ApiClient],
    serve: Callable[[Script], LoopbackServer],
) -> None:
    body = b'data: {"type": "complete"}\n\n'
    server = serve(writes(SSE, body, len(body)))
    api = client(server.url, stream_timeout_s=5)
    with api.stream("stream", "/stream", awaiting="the complete event") as stream:
        assert stream.awaited == "the complete event"
        assert [item.json() for item in stream if isinstance(item, SseEvent)] == [
            {"type": "complete"}
        ]


def test_an_event_framed_with_crs_arrives_before_the_server_sends_more(
    client: Callable[..., ApiClient], serve: Callable[[Script], LoopbackServer]
) -> None:
    # A reader that held the final CR back until the next byte (in case an LF followed) would
    # see this event only at the next keepalive, or never.
    def script(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(SSE + b'data: {"type": "complete"}\r\r')
        stopping.wait(10)

    server = serve(script)
    started = time.monotonic()
    with client(server.url).stream("stream", "/stream", read_timeout_s=3) as stream:
        assert next(iter(stream)) == SseEvent(None, '{"type": "complete"}')
    assert time.monotonic() - started < 2
