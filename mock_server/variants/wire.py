"""Wire-level variants: what HTTP and SSE allow a server to do differently on the wire.

`WireMiddleware` re-frames whatever the apps below it answer; the model and the apps never know.
Every switch makes a difference that HTTP (RFC 9110/9112), JSON (RFC 8259) or the event-stream
format (WHATWG HTML, "Server-sent events") allow, and that real deployments show: a proxy that
gzips, a framework that pretty-prints or ends lines with CRLF, a load balancer that re-chunks,
a vendor that adds fields, a slow network, slow workers. A client (the conformance suite, or a
frontend) that breaks on one of them is wrong, not the server.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CODINGS: Final = ("", "gzip", "deflate")
LINE_ENDINGS: Final = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
JSON_STYLES: Final = ("compact", "pretty")
SSE_FIELD_STYLES: Final = ("spaced", "split")


@dataclass(frozen=True)
class WireVariant:
    """Every default is the reference server's own behaviour."""

    # Compress bodies with this coding when the request's Accept-Encoding allows it ("" = never).
    # Event streams use a compressor flushed after every write, so events still arrive one by one.
    content_coding: str = ""
    # How every line of an event stream ends: "lf", "crlf" or "cr" (all three are allowed).
    sse_line_ending: str = "lf"
    # Split every body write into writes of this many bytes (0 = as the app wrote them), so
    # events, lines and UTF-8 characters straddle chunks.
    chunk_bytes: int = 0
    # Delay before a response starts, as a distant server or a slow proxy would.
    latency_ms: int = 0
    # Delay before every event-stream write after the first one.
    sse_write_delay_ms: int = 0
    # Add unknown members to every JSON object of a body or an event's data, nested too (chosen by
    # the object's member names); a member the documents define is never touched.
    extra_fields: bool = False
    # "pretty": bodies indented, members in reverse order, non-ASCII escaped; event data with
    # spaces after separators (an event's data line cannot hold a raw newline).
    json_style: str = "compact"
    # Add `; charset=utf-8` to JSON and event-stream content types that carry none.
    charset: bool = False
    # Open every event stream with `retry: N` (milliseconds; 0 = no retry line).
    sse_retry: int = 0
    # A comment line (`: x-vendor note`) after every event and at the start of every stream.
    sse_comments: bool = False
    # "split": an event's JSON data indented over several `data:` lines (the client joins them
    # with LF, and JSON allows the whitespace), and no space after a field's colon (`id:1-0`);
    # both are the event-stream format's own rules, and servers that pretty-print do it.
    sse_field_style: str = "spaced"
    # Multiply every API's step_ms and start_delay_ms (and Strait's second_ms): jobs that
    # take seconds instead of milliseconds. Applied where the world is built.
    slow_factor: int = 1

    def check(self) -> str | None:
        if self.content_coding not in CODINGS:
            return f"content_coding must be one of {', '.join(map(repr, CODINGS))}"
        if self.sse_line_ending not in LINE_ENDINGS:
            return f"sse_line_ending must be one of {', '.join(map(repr, LINE_ENDINGS))}"
        if self.json_style not in JSON_STYLES:
            return f"json_style must be one of {', '.join(map(repr, JSON_STYLES))}"
        if self.sse_field_style not in SSE_FIELD_STYLES:
            return f"sse_field_style must be one of {', '.join(map(repr, SSE_FIELD_STYLES))}"
        for name in ("chunk_bytes", "latency_ms", "sse_write_delay_ms", "sse_retry"):
            if getattr(self, name) < 0:
                return f"{name} must not be negative"
        if self.slow_factor < 1:
            return "slow_factor must be at least 1"
        return None

    @property
    def on_wire(self) -> bool:
        """Whether the middleware has anything to do (slow_factor acts on the model instead)."""
        default = WireVariant()
        return any(
            getattr(self, f.name) != getattr(default, f.name)
            for f in fields(self)
            if f.name != "slow_factor"
        )


# Each preset is a [variant.wire] table. Their sum covers every switch and every allowed value
# (gzip and deflate, crlf and cr, 1- and 7-byte chunks), and the whole conformance suite must
# pass against each (tests/conformance/test_variants.py).
PRESETS: dict[str, dict[str, Any]] = {
    # What a gzipping proxy in front of a pretty-printing, vendor-extended framework looks like.
    "wire": {
        "content_coding": "gzip",
        "sse_line_ending": "crlf",
        "chunk_bytes": 7,
        "extra_fields": True,
        "json_style": "pretty",
        "charset": True,
        "sse_retry": 3000,
        "sse_comments": True,
    },
    # Bare CR line ends, and uncompressed 3-byte writes: every line, event and multi-byte UTF-8
    # character of a body straddles writes (under a coding, the decoder would hand the client
    # whole flushes). 1-byte writes cost twice the time of the whole run for nothing more.
    # Event data over several lines, each a line of its own only by a bare CR.
    "wire-cr": {
        "sse_line_ending": "cr",
        "chunk_bytes": 3,
        "extra_fields": True,
        "sse_field_style": "split",
    },
    # A distant server behind a zlib "deflate" proxy: every response starts 100 ms late, events
    # trickle in pieces.
    "latency": {
        "latency_ms": 100,
        "sse_write_delay_ms": 5,
        "content_coding": "deflate",
        "chunk_bytes": 64,
    },
    # Workers that take seconds: a typical CI job of tens of steps takes a second or more.
    "slow": {"slow_factor": 20},
}

# Members whose value is a map the client or a job defines (input, output, metadata, a form's
# fields, an error's offending fields...): a member added there would change what the documents
# define, so extra fields go around them, never into them. Names from the specs' schemas that
# are objects without declared properties.
FREE_FORM: Final = frozenset(
    {
        "answers",
        "block",
        "details",
        "fields",
        "input",
        "metadata",
        "output",
        "pathway",
        "payload",
        "reflex",
        "result",
        "schema",
        "signal",
        "state",
        "tags",
        "value",
    }
)

# Unknown members of every JSON type, none of a name any document uses. Which one an object gets
# depends on its own member names: one resource gets the same extension in every route that
# returns it (a run alone and inside a debug bundle, a job alone and in a list), as a real
# server's serialiser would do, while the objects nested in it mostly get others.
EXTRAS: Final[tuple[tuple[str, Any], ...]] = (
    ("x_vendor", {"trace": "wire-variant", "region": "eu-west"}),
    ("x_vendor_hint", "unknown members must be ignored"),
    ("x_vendor_rank", 7),
    ("x_vendor_flags", [True, None, 1.5]),
    ("x_vendor_note", None),
)


def with_extra_fields(value: Any) -> Any:
    if isinstance(value, dict):
        out = {
            key: item if key in FREE_FORM else with_extra_fields(item)
            for key, item in value.items()
        }
        shape = zlib.crc32("\0".join(sorted(value)).encode())
        name, extra = EXTRAS[shape % len(EXTRAS)]
        out.setdefault(name, extra)
        return out
    if isinstance(value, list):
        return [with_extra_fields(item) for item in value]
    return value


def reversed_members(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_members(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [reversed_members(item) for item in value]
    return value


def accepts(header: str, coding: str) -> bool:
    """Whether an Accept-Encoding value allows `coding` (RFC 9110 12.5.3: q=0 refuses, `*`
    stands for every coding not listed)."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        token, *params = (p.strip() for p in part.split(";"))
        if not token:
            continue
        weight = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(raw)
                except ValueError:
                    weight = 0.0
        weights[token.lower()] = weight
    if coding in weights:
        return weights[coding] > 0
    return weights.get("*", 0.0) > 0


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _without(headers: list[tuple[bytes, bytes]], *names: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in names]


def _unspaced(line: bytes) -> bytes:
    """`field: value` as `field:value`, unless the value itself starts with a space."""
    name, colon, value = line.partition(b":")
    if not colon or not name or not value.startswith(b" ") or value.startswith(b"  "):
        return line
    return name + b":" + value[1:]


def _kind(content_type: bytes) -> str:
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"text/event-stream":
        return "sse"
    if media == b"application/json" or media.endswith(b"+json"):
        return "json"
    return "other"


class _Compressor:
    def __init__(self, coding: str) -> None:
        # wbits 31: a gzip member; 15: a zlib stream, which is what HTTP calls "deflate".
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31 if coding == "gzip" else 15)

    def write(self, data: bytes) -> bytes:
        # A sync flush after every write: the bytes of an event reach the client with it.
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


class WireMiddleware:
    """Re-frames every HTTP response as the variant says; outermost but for CORS."""

    def __init__(self, app: ASGIApp, variant: WireVariant) -> None:
        self.app = app
        self.variant = variant
        # An API's OpenAPI document (and the root index of them, mock_server.describe) is no API
        # data: a member added to it would be a keyword OpenAPI does not define, and tools reading
        # it would reject it. It is still framed, compressed and pretty-printed.
        self.described = replace(variant, extra_fields=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        variant = self.described if scope["path"].endswith("/openapi.json") else self.variant
        coding = variant.content_coding
        if coding:
            accept = _header(list(scope["headers"]), b"accept-encoding")
            if accept is None or not accepts(accept.decode("latin-1"), coding):
                coding = ""
        response = _Response(variant, coding, scope["method"] == "HEAD", send)
        await self.app(scope, receive, response.send)


class _Response:
    def __init__(self, variant: WireVariant, coding: str, head: bool, send: Send) -> None:
        self.v = variant
        self.coding = coding
        self.head = head
        self._send = send
        self.kind = "other"
        self.start: Message | None = None
        self.passthrough = False
        self.buffer: list[bytes] = []
        self.pending = b""  # an event stream's incomplete last line
        self.compressor: _Compressor | None = None
        self.writes = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._on_start(message)
        elif message["type"] == "http.response.body":
            if self.passthrough:
                await self._send(message)
            elif self.kind == "sse":
                await self._stream(message.get("body", b""), message.get("more_body", False))
            else:
                self.buffer.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._flush_buffer()
        else:
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        headers: list[tuple[bytes, bytes]] = list(message.get("headers") or [])
        content_type = _header(headers, b"content-type") or b""
        self.kind = _kind(content_type)
        if self.v.charset and self.kind != "other" and b"charset" not in content_type.lower():
            headers = _without(headers, b"content-type")
            headers.append((b"content-type", content_type + b"; charset=utf-8"))
        status = int(message["status"])
        compressible = bool(self.v.content_coding) and _header(headers, b"content-encoding") is None
        if compressible:
            vary = _header(headers, b"vary")
            headers = _without(headers, b"vary")
            headers.append((b"vary", vary + b", Accept-Encoding" if vary else b"Accept-Encoding"))
        if not compressible:
            self.coding = ""
        self.start = {**message, "headers": headers}
        # Nothing to re-frame in a body that is not sent.
        if self.head or status < 200 or status in (204, 304):
            self.passthrough = True
            await self._begin()
            return
        if self.kind == "sse":
            headers = _without(headers, b"content-length")
            if self.coding:
                headers.append((b"content-encoding", self.coding.encode()))
                self.compressor = _Compressor(self.coding)
            self.start = {**message, "headers": headers}
            await self._begin()
            opening = b""
            eol = LINE_ENDINGS[self.v.sse_line_ending]
            if self.v.sse_retry:
                opening += b"retry: " + str(self.v.sse_retry).encode() + eol + eol
            if self.v.sse_comments:
                opening += b": x-vendor stream opened" + eol
            if opening:
                await self._write(opening, more=True)

    async def _begin(self) -> None:
        assert self.start is not None
        if self.v.latency_ms:
            await asyncio.sleep(self.v.latency_ms / 1000)
        await self._send(self.start)

    async def _flush_buffer(self) -> None:
        body = b"".join(self.buffer)
        self.buffer = []
        if self.kind == "json" and (self.v.extra_fields or self.v.json_style != "compact"):
            body = self._rewrite_json(body, pretty=self.v.json_style == "pretty")
        if self.coding:
            compressor = _Compressor(self.coding)
            body = compressor.write(body) + compressor.finish()
        assert self.start is not None
        headers = _without(list(self.start["headers"]), b"content-length")
        headers.append((b"content-length", str(len(body)).encode()))
        if self.coding:
            headers.append((b"content-encoding", self.coding.encode()))
        self.start = {**self.start, "headers": headers}
        await self._begin()
        await self._chunked(body, more=False)

    def _rewrite_json(self, raw: bytes, *, pretty: bool, inline: bool = False) -> bytes:
        try:
            value = json.loads(raw)
        except ValueError:
            return raw  # not ours to repair
        if self.v.extra_fields:
            value = with_extra_fields(value)
        if not pretty:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        value = reversed_members(value)
        if inline:
            return json.dumps(value, separators=(", ", ": "), ensure_ascii=True).encode()
        return json.dumps(value, indent=2, ensure_ascii=True).encode() + b"\n"

    async def _stream(self, body: bytes, more: bool) -> None:
        data = self.pending + body
        if more:
            cut = data.rfind(b"\n") + 1
            data, self.pending = data[:cut], data[cut:]
        else:
            self.pending = b""
        out = self._reframe(data)
        if out or not more:
            await self._write(out, more=more)

    def _reframe(self, data: bytes) -> bytes:
        v = self.v
        if not data:
            return b""
        eol = LINE_ENDINGS[v.sse_line_ending]
        lines = data.split(b"\n")
        # The app ends every line with LF: the last piece is what followed the final LF (empty,
        # or an unterminated tail at the very end of the stream, kept as it came).
        tail = lines.pop()
        out: list[bytes] = []
        rewrite = v.extra_fields or v.json_style != "compact"
        split = v.sse_field_style == "split"
        for line in lines:
            if split and line.startswith(b"data:"):
                out.extend(d + eol for d in self._data_lines(line[5:].removeprefix(b" ")))
                continue
            if split:
                line = _unspaced(line)
            if rewrite and line.startswith(b"data:"):
                payload = line[5:].removeprefix(b" ")
                line = b"data: " + self._rewrite_json(
                    payload, pretty=v.json_style == "pretty", inline=True
                )
            out.append(line + eol)
            if line == b"" and v.sse_comments:
                out.append(b": x-vendor note" + eol)
        out.append(tail)
        return b"".join(out)

    def _data_lines(self, payload: bytes) -> list[bytes]:
        """An event's data as indented JSON, one `data:` line per line of it."""
        try:
            value = json.loads(payload)
        except ValueError:
            return [b"data:" + payload if not payload.startswith(b" ") else b"data: " + payload]
        if self.v.extra_fields:
            value = with_extra_fields(value)
        pretty = self.v.json_style == "pretty"
        if pretty:
            value = reversed_members(value)
        text = json.dumps(value, indent=2, ensure_ascii=pretty).encode()
        # The parser drops one space after the colon, so an indented line keeps its indent only
        # behind a space of its own; the others go without (both forms are allowed).
        return [b"data: " + t if t.startswith(b" ") else b"data:" + t for t in text.split(b"\n")]

    async def _write(self, data: bytes, *, more: bool) -> None:
        if self.compressor is not None:
            data = self.compressor.write(data)
            if not more:
                data += self.compressor.finish()
        if self.writes and self.v.sse_write_delay_ms:
            await asyncio.sleep(self.v.sse_write_delay_ms / 1000)
        self.writes += 1
        await self._chunked(data, more=more)

    async def _chunked(self, data: bytes, *, more: bool) -> None:
        size = self.v.chunk_bytes
        if size <= 0 or len(data) <= size:
            await self._send({"type": "http.response.body", "body": data, "more_body": more})
            return
        last = len(data) - size
        for at in range(0, len(data), size):
            piece = data[at : at + size]
            final = at >= last
            await self._send(
                {"type": "http.response.body", "body": piece, "more_body": more or not final}
            )
