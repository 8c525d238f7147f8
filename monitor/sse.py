"""A push-style event-stream reader: the proxy feeds it each chunk as it forwards it.

Byte-level decoding (LF, CRLF, CR, split anywhere, a BOM) is the suite's own `LineDecoder`; this
adds the field parsing of `conformance.clients.sse.parse` in a form that keeps its state between
chunks. Content coding (gzip, deflate) is undone first, for reading only: the bytes forwarded are
the upstream's own.
"""

from __future__ import annotations

import zlib

from conformance.clients.sse import LineDecoder

from .exchange import Event


class Decoder:
    """Undoes gzip or deflate (zlib or raw) for inspection; identity otherwise."""

    def __init__(self, coding: str) -> None:
        coding = coding.strip().lower()
        self._z: zlib._Decompress | None = None
        self._raw_fallback = False
        if coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_fallback = True
        self.failed = False

    def feed(self, chunk: bytes) -> bytes:
        if self._z is None or self.failed:
            return b"" if self.failed else chunk
        try:
            return self._z.decompress(chunk)
        except zlib.error:
            if self._raw_fallback:  # "deflate" sent as raw DEFLATE, as some servers do
                self._raw_fallback = False
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(chunk)
            self.failed = True
            return b""


class EventReader:
    """Feed bytes; get each complete event (comments are counted, not kept)."""

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._data: list[str] = []
        self._id: str | None = None
        self._event: str | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[Event]:
        return self._parse(self._lines.feed(chunk))

    def close(self) -> list[Event]:
        # An unterminated final event is discarded, as the standard says.
        self._parse(self._lines.close())
        return []

    def _parse(self, lines: list[str]) -> list[Event]:
        out: list[Event] = []
        for line in lines:
            if line == "":
                if self._data:
                    out.append(Event(self._id, "\n".join(self._data), self._event))
                self._data, self._id, self._event = [], None, None
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "id":
                if "\0" not in value:
                    self._id = value
            elif name == "event":
                self._event = value
        return out
