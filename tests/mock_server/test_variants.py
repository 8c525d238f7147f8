"""Wire variants (mock_server.variants.wire): each switch on a small app, the [variant] table's
errors, and event streams that still stream, event by event, through the middleware."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from conformance.clients.sse import SseComment, SseEvent, parse
from mock_server.app import create_app
from mock_server.cli import main
from mock_server.profile import FIXTURES, ProfileError, ServerProfile, with_variants
from mock_server.variants import PRESETS, Variant, apply_presets, variant_from_table
from mock_server.variants.wire import FREE_FORM, WireMiddleware, WireVariant, accepts
from mock_server.world import World

from .asgi import asgi_request

CI_PROFILE = FIXTURES / "server" / "ci.toml"

DOC: dict[str, Any] = {
    "id": "job_1",
    "name": "café ✓",
    "items": [{"a": 1, "b": [{"deep": True}]}, {"a": 2, "b": []}],
    "metadata": {"owner": "me"},
    "fields": {"email": "is missing"},
    "none": None,
}
EVENTS: list[dict[str, Any]] = [
    {"type": "progress", "pct": 10, "note": "ünïcödé"},
    {"type": "done", "output": {"k": "v"}},
]


def sse_frames() -> list[bytes]:
    return [
        f"id: {n}\ndata: {json.dumps(e, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()
        for n, e in enumerate(EVENTS, 1)
    ] + [b": ping\n\n"]


async def frames_gen() -> AsyncIterator[bytes]:
    for chunk in sse_frames():
        yield chunk


def small_app() -> Starlette:
    async def doc(_: Request) -> Response:
        return JSONResponse(DOC, headers={"Vary": "Origin"})

    async def stream(_: Request) -> Response:
        return StreamingResponse(frames_gen(), media_type="text/event-stream")

    async def text(_: Request) -> Response:
        return PlainTextResponse("plain words")

    async def empty(_: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/doc", doc, methods=["GET", "HEAD"]),
            Route("/stream", stream),
            Route("/text", text),
            Route("/empty", empty),
        ]
    )


def call(
    app: ASGIApp, path: str, *, method: str = "GET", accept_encoding: str | None = None
) -> list[Message]:
    """Every message the app sends, as the server would put them on the wire."""
    headers = [] if accept_encoding is None else [(b"accept-encoding", accept_encoding.encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("test", 80),
        "client": ("test", 1),
    }
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # Then the client stays connected: a streaming response listens for a disconnect.
        await asyncio.Future()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent


def wired(**switches: Any) -> ASGIApp:
    return WireMiddleware(small_app(), WireVariant(**switches))


def headers_of(messages: list[Message]) -> dict[str, str]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    joined: dict[str, str] = {}
    for key, value in start["headers"]:
        name = key.decode().lower()
        joined[name] = f"{joined[name]}, {value.decode()}" if name in joined else value.decode()
    return joined


def bodies(messages: list[Message]) -> list[bytes]:
    return [m.get("body", b"") for m in messages[1:] if m["type"] == "http.response.body"]


def body_of(messages: list[Message]) -> bytes:
    return b"".join(bodies(messages))


def sse_items(raw: bytes) -> list[SseEvent | SseComment]:
    return list(parse(raw.decode().splitlines()))


# --- content coding ---------------------------------------------------------------------------


def test_gzip_when_the_request_allows_it() -> None:
    messages = call(wired(content_coding="gzip"), "/doc", accept_encoding="gzip, deflate")
    head = headers_of(messages)
    raw = body_of(messages)
    assert head["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw)) == DOC
    assert int(head["content-length"]) == len(raw)
    # The app's own Vary is kept and Accept-Encoding added to it.
    assert [v.strip() for v in head["vary"].split(",")] == ["Origin", "Accept-Encoding"]
    assert messages[-1]["more_body"] is False


def test_deflate_is_a_zlib_stream() -> None:
    messages = call(wired(content_coding="deflate"), "/doc", accept_encoding="deflate")
    assert headers_of(messages)["content-encoding"] == "deflate"
    assert json.loads(zlib.decompress(body_of(messages))) == DOC


@pytest.mark.parametrize("accept", [None, "identity", "gzip;q=0", "deflate", "br"])
def test_no_coding_the_request_does_not_allow(accept: str | None) -> None:
    messages = call(wired(content_coding="gzip"), "/doc", accept_encoding=accept)
    head = headers_of(messages)
    assert "content-encoding" not in head
    assert json.loads(body_of(messages)) == DOC
    assert "Accept-Encoding" in head["vary"], "the answer still varies with Accept-Encoding"


def test_accept_encoding_weights_and_wildcard() -> None:
    assert accepts("gzip", "gzip")
    assert accepts("GZIP;q=0.5", "gzip")
    assert accepts("*", "deflate")
    assert not accepts("*, deflate;q=0", "deflate")
    assert not accepts("gzip;q=0", "gzip")
    assert not accepts("br", "gzip")
    assert not accepts("gzip;q=nonsense", "gzip")


def test_an_event_stream_is_compressed_event_by_event() -> None:
    messages = call(wired(content_coding="gzip"), "/stream", accept_encoding="gzip")
    head = headers_of(messages)
    assert head["content-encoding"] == "gzip"
    assert "content-length" not in head
    decoder = zlib.decompressobj(31)
    written = [b for b in bodies(messages)]
    # Each app write is decodable on its own arrival: a sync flush per write, not one at the end.
    for chunk, frame in zip(written, sse_frames(), strict=False):
        assert decoder.decompress(chunk) == frame
    assert decoder.decompress(b"".join(written[len(sse_frames()) :])) == b""
    assert decoder.eof


# --- event-stream framing ---------------------------------------------------------------------


@pytest.mark.parametrize(("ending", "eol"), [("crlf", b"\r\n"), ("cr", b"\r")])
def test_every_line_of_a_stream_ends_as_asked(ending: str, eol: bytes) -> None:
    raw = body_of(call(wired(sse_line_ending=ending), "/stream"))
    assert raw == b"".join(sse_frames()).replace(b"\n", eol)
    if ending == "cr":
        assert b"\n" not in raw
    items = sse_items(raw)
    assert [i.json() for i in items if isinstance(i, SseEvent)] == EVENTS
    assert [i.id for i in items if isinstance(i, SseEvent)] == ["1", "2"]
    assert SseComment("ping") in items


def test_retry_line_and_vendor_comments() -> None:
    raw = body_of(call(wired(sse_retry=3000, sse_comments=True), "/stream"))
    assert raw.startswith(b"retry: 3000\n\n")
    items = sse_items(raw)
    events = [i for i in items if isinstance(i, SseEvent)]
    assert [e.json() for e in events] == EVENTS, "the retry block must not dispatch an event"
    comments = [i.text for i in items if isinstance(i, SseComment)]
    # One at the start, one after every blank line (each event and the ping's).
    assert comments.count("x-vendor note") == len(sse_frames())
    assert comments[0] == "x-vendor stream opened"
    assert "ping" in comments


def test_split_fields_spread_the_data_over_lines_and_drop_the_space() -> None:
    raw = body_of(call(wired(sse_field_style="split"), "/stream"))
    lines = raw.decode().split("\n")
    assert "id:1" in lines and "id: 1" not in lines
    assert "data:{" in lines and 'data:   "pct": 10,' in lines, lines
    items = sse_items(raw)
    events = [i for i in items if isinstance(i, SseEvent)]
    assert [e.json() for e in events] == EVENTS
    assert [e.id for e in events] == ["1", "2"]
    assert all("\n" in e.data for e in events)
    assert SseComment("ping") in items


def test_split_fields_with_cr_ends_and_extra_fields() -> None:
    switches = PRESETS["wire-cr"]["wire"]
    messages = call(wired(**switches), "/stream")
    raw = body_of(messages)
    assert b"\n" not in raw
    events = [i for i in sse_items(raw) if isinstance(i, SseEvent)]
    for got, sent in zip(events, EVENTS, strict=True):
        assert {k: v for k, v in got.json().items() if not k.startswith("x_vendor")} == sent


def test_the_whole_wire_preset_stream_still_parses() -> None:
    switches = PRESETS["wire"]["wire"]
    messages = call(wired(**switches), "/stream", accept_encoding="gzip")
    assert all(len(b) <= switches["chunk_bytes"] for b in bodies(messages))
    raw = zlib.decompressobj(31).decompress(body_of(messages))
    events = [i for i in sse_items(raw) if isinstance(i, SseEvent)]
    assert [e.retry for e in events][:1] == [None]
    for got, sent in zip(events, EVENTS, strict=True):
        data = got.json()
        assert {k: v for k, v in data.items() if not k.startswith("x_vendor")} == sent
        assert any(k.startswith("x_vendor") for k in data)
        assert "\r\n" not in got.data and "\n" not in got.data


# --- chunking and latency ---------------------------------------------------------------------


def test_chunks_split_bodies_and_characters() -> None:
    messages = call(wired(chunk_bytes=3), "/doc")
    pieces = bodies(messages)
    assert all(len(p) <= 3 for p in pieces) and len(pieces) > 10
    assert [m["more_body"] for m in messages[1:]] == [True] * (len(pieces) - 1) + [False]
    raw = b"".join(pieces)
    assert json.loads(raw) == DOC
    assert int(headers_of(messages)["content-length"]) == len(raw)
    # Some piece ends inside a multi-byte character.
    straddled = False
    for piece in pieces:
        try:
            piece.decode()
        except UnicodeDecodeError:
            straddled = True
    assert straddled


def test_chunks_split_every_stream_write() -> None:
    pieces = bodies(call(wired(chunk_bytes=1), "/stream"))
    assert all(len(p) == 1 for p in pieces[:-1])
    assert b"".join(pieces) == b"".join(sse_frames())


def test_latency_delays_the_start() -> None:
    began = time.monotonic()
    messages = call(wired(latency_ms=150), "/doc")
    assert time.monotonic() - began >= 0.15
    assert json.loads(body_of(messages)) == DOC


# --- JSON -------------------------------------------------------------------------------------


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("x_vendor")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def test_extra_fields_go_into_every_object_but_not_into_free_form_maps() -> None:
    body = json.loads(body_of(call(wired(extra_fields=True), "/doc")))
    assert _strip(body) == DOC, "a member the documents define changed"

    def objects(value: Any, under: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(value, dict):
            yield under, value
            for k, v in value.items():
                yield from objects(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from objects(v, under)

    seen_names = set()
    for under, obj in objects(body):
        extras = [k for k in obj if k.startswith("x_vendor")]
        if under in FREE_FORM:
            assert not extras, f"{under} is a client's map and must stay as it was"
        elif under != "x_vendor":
            assert len(extras) == 1, (under, obj)
            seen_names.add(extras[0])
    assert len(seen_names) > 1, "nested objects all got the same extension"
    # The same object gets the same extension wherever it appears.
    first, second = body["items"]
    assert {k for k in first if k.startswith("x_")} == {k for k in second if k.startswith("x_")}


def test_pretty_json_is_the_same_document() -> None:
    raw = body_of(call(wired(json_style="pretty"), "/doc"))
    assert json.loads(raw) == DOC
    text = raw.decode("ascii")  # non-ASCII escaped
    assert "\n  " in text
    assert list(json.loads(raw)) == list(reversed(list(DOC)))


def test_charset_is_added_once() -> None:
    assert headers_of(call(wired(charset=True), "/doc"))["content-type"] == (
        "application/json; charset=utf-8"
    )
    # Starlette gives text/* a charset of its own; it is not doubled.
    stream_type = headers_of(call(wired(charset=True), "/stream"))["content-type"]
    assert stream_type.lower().count("charset") == 1
    assert headers_of(call(wired(charset=True), "/text"))["content-type"].count("charset") == 1


def test_bodies_that_are_not_sent_are_left_alone() -> None:
    app = wired(content_coding="gzip", extra_fields=True, chunk_bytes=2)
    head = call(app, "/doc", method="HEAD", accept_encoding="gzip")
    assert "content-encoding" not in headers_of(head)
    # Starlette hands even a HEAD body down (the server drops it); it passes untouched.
    assert body_of(head) in (b"", JSONResponse(DOC).body)
    empty = call(app, "/empty", accept_encoding="gzip")
    assert headers_of(empty).get("content-encoding") is None
    assert body_of(empty) == b""


def test_other_content_is_only_compressed_and_chunked() -> None:
    messages = call(
        wired(content_coding="gzip", extra_fields=True, json_style="pretty"),
        "/text",
        accept_encoding="gzip",
    )
    assert gzip.decompress(body_of(messages)) == b"plain words"


# --- configuration ----------------------------------------------------------------------------


def test_every_preset_is_valid_and_together_they_cover_every_switch() -> None:
    covered: set[str] = set()
    for name in PRESETS:
        variant = apply_presets(Variant(), [name])
        assert variant.active
        default = WireVariant()
        covered |= {
            f.name
            for f in fields(WireVariant)
            if getattr(variant.wire, f.name) != getattr(default, f.name)
        }
    assert covered == {f.name for f in fields(WireVariant)}
    codings = {PRESETS[n].get("wire", {}).get("content_coding") for n in PRESETS}
    endings = {PRESETS[n].get("wire", {}).get("sse_line_ending") for n in PRESETS}
    assert {"gzip", "deflate"} <= codings and {"crlf", "cr"} <= endings


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"wire": {"gzip": True}}, "unknown key(s) in [variant.wire]: gzip"),
        ({"wire": {"chunk_bytes": "7"}}, "[variant.wire] chunk_bytes must be a int"),
        ({"wire": {"extra_fields": 1}}, "[variant.wire] extra_fields must be a bool"),
        ({"wire": {"content_coding": "br"}}, "content_coding must be one of"),
        ({"wire": {"sse_line_ending": "lfcr"}}, "sse_line_ending must be one of"),
        ({"wire": {"json_style": "tabs"}}, "json_style must be one of"),
        ({"wire": {"sse_field_style": "folded"}}, "sse_field_style must be one of"),
        ({"wire": {"latency_ms": -1}}, "latency_ms must not be negative"),
        ({"wire": {"slow_factor": 0}}, "slow_factor must be at least 1"),
        ({"wire": "gzip"}, "[variant.wire] must be a table"),
        ({"wyre": {}}, "unknown key(s) in [variant]: wyre"),
    ],
)
def test_a_bad_variant_table_is_a_profile_error(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        ServerProfile.from_dict({"variant": table})
    assert message in str(caught.value)


def test_a_profile_variant_table_and_a_preset_compose(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[variant.wire]\nsse_line_ending = "cr"\ncharset = true\n')
    profile = ServerProfile.load(path)
    assert profile.variant.wire == WireVariant(sse_line_ending="cr", charset=True)
    both = with_variants(profile, ["latency"]).variant.wire
    assert both.sse_line_ending == "cr" and both.charset and both.latency_ms == 100
    assert variant_from_table({}).wire == WireVariant()


def test_an_unknown_variant_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ProfileError, match="unknown variant 'nope'"):
        with_variants(ServerProfile(), ["nope"])
    with pytest.raises(SystemExit) as exited:
        main(["--variant", "nope", "--port", "0"])
    assert exited.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_slow_factor_multiplies_every_pace() -> None:
    base = ServerProfile.load(CI_PROFILE)
    slow = World(with_variants(base, ["slow"]))
    factor = PRESETS["slow"]["wire"]["slow_factor"]
    assert slow.auvy.settings.step_ms == base.auvy.step_ms * factor
    assert slow.auvy.settings.start_delay_ms == base.auvy.start_delay_ms * factor
    assert slow.ava.settings.step_ms == base.ava.step_ms * factor
    assert slow.strait.settings.step_ms == base.strait.step_ms * factor
    assert slow.strait.settings.second_ms == base.strait.second_ms * factor
    assert not with_variants(base, ["slow"]).variant.wire.on_wire


def test_with_a_wire_variant_every_request_takes_the_stack() -> None:
    profile = with_variants(ServerProfile.load(CI_PROFILE), ["wire"])
    app = create_app(profile)
    assert not app.direct and app.direct_root is None
    response = asgi_request(app, "GET", "/_mock/health", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["status"] == "ok"
    assert any(k.startswith("x_vendor") for k in response.json())
    assert create_app(ServerProfile.load(CI_PROFILE)).direct, "no variant: the direct path"


# --- streaming on a real server ---------------------------------------------------------------


class LoopbackServer:
    """uvicorn on 127.0.0.1 in a thread: httpx's ASGI transport would not show streaming."""

    def __init__(self, app: ASGIApp) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the loopback server did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def gated_app() -> tuple[Starlette, threading.Event]:
    """An event stream that sends its second event only once the test has seen the first."""
    release = threading.Event()

    async def frames() -> AsyncIterator[bytes]:
        first, second, _ping = sse_frames()
        yield first
        deadline = time.monotonic() + 10
        while not release.is_set():
            if time.monotonic() > deadline:
                return  # the client never saw the first event: the stream ends short
            await asyncio.sleep(0.01)
        yield second

    async def stream(_: Request) -> Response:
        return StreamingResponse(frames(), media_type="text/event-stream")

    return Starlette(routes=[Route("/stream", stream)]), release


def whatwg_lines(chunks: Iterator[str]) -> Iterator[str]:
    """Lines as the event-stream standard splits them, as they arrive: a CR ends a line at once
    (a LF right after it, even in the next chunk, is part of the same line end). httpx's
    `iter_lines` holds a chunk's final CR back until more arrives, so with CR line ends it would
    deliver an event only once the next one's bytes come."""
    pending = ""
    after_cr = False
    for chunk in chunks:
        if after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        after_cr = False
        pending += chunk
        while True:
            cut = min((i for i in (pending.find("\r"), pending.find("\n")) if i >= 0), default=-1)
            if cut < 0:
                break
            yield pending[:cut]
            if pending[cut] == "\r":
                if cut + 1 == len(pending):
                    after_cr = True
                elif pending[cut + 1] == "\n":
                    cut += 1
            pending = pending[cut + 1 :]


@pytest.mark.parametrize("preset", sorted(n for n in PRESETS if "wire" in PRESETS[n]))
def test_events_arrive_one_by_one_through_the_middleware(preset: str) -> None:
    app, release = gated_app()
    variant = apply_presets(Variant(), [preset]).wire
    with (
        LoopbackServer(WireMiddleware(app, variant)) as server,
        httpx.Client(timeout=10) as client,
        client.stream("GET", server.url + "/stream") as response,
    ):
        assert response.headers.get("content-encoding", "") == variant.content_coding
        lines = whatwg_lines(response.iter_text())
        seen: list[dict[str, Any]] = []
        for item in parse(lines):
            if isinstance(item, SseEvent):
                seen.append(_strip(item.json()))
                release.set()  # only now may the server send the second event
            if len(seen) == len(EVENTS):
                break
    assert seen == EVENTS


def test_the_frontend_wire_profile_turns_every_framing_switch_on() -> None:
    wire = ServerProfile.load(FIXTURES / "server" / "wire-dev.toml").variant.wire
    default = WireVariant()
    off = [
        f.name
        for f in fields(WireVariant)
        if getattr(wire, f.name) == getattr(default, f.name) and f.name != "slow_factor"
    ]
    assert not off, f"fixtures/server/wire-dev.toml leaves {off} at the reference's behaviour"
