"""An event-stream reader (WHATWG HTML, "Server-sent events") that also keeps comments.

Browsers and most client libraries drop comments; the suite needs them to see `: ping`
keepalives, and needs every field as sent to check ids.

Reading is as tolerant as the standard allows, since any of it may come from a correct server:
LF, CRLF or CR line ends (a CR closing one network chunk and the LF opening the next are ONE line
end), a UTF-8 byte order mark before the first line, `retry:`, `event:` and comment lines,
multi-line `data:`, and events or multi-byte characters split at any byte. `LineDecoder` does
the byte-level part incrementally (httpx's `iter_lines` treats a CR/LF pair split across chunks
as two line ends, which would dispatch a half-read event) and `parse` turns lines into items.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    data: str
    event: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class SseComment:
    text: str


Item = SseEvent | SseComment

_LINE_END = re.compile(r"\r\n|\r|\n")
BOM = "\ufeff"


class LineDecoder:
    """Turns byte chunks, split anywhere, into complete lines without their terminators."""

    def __init__(self) -> None:
        # Invalid UTF-8 becomes U+FFFD, as the standard's decode step does, instead of an error
        # that would hide whatever else the stream got right or wrong.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._started = False
        # The previous chunk ended in CR: an LF opening this one completes that line end.
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        return self._lines(self._decoder.decode(chunk))

    def close(self) -> list[str]:
        """The lines still held when the stream ends, including an unterminated last one (which
        `parse` then discards, as the standard does with an undispatched event)."""
        lines = self._lines(self._decoder.decode(b"", final=True))
        rest, self._buffer = self._buffer, ""
        return [*lines, rest] if rest else lines

    def _lines(self, text: str) -> list[str]:
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix(BOM)
        if self._after_cr:
            self._after_cr = False
            text = text.removeprefix("\n")
        buffer = self._buffer + text
        lines = []
        start = 0
        for match in _LINE_END.finditer(buffer):
            lines.append(buffer[start : match.start()])
            start = match.end()
        # A CR at the very end is already a line end (so an event framed with CRs dispatches at
        # once), but it may be the first half of a CRLF whose LF is still on the wire.
        self._after_cr = buffer.endswith("\r")
        self._buffer = buffer[start:]
        return lines


def decode(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a byte stream, as they become complete."""
    decoder = LineDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


def parse(lines: Iterable[str]) -> Iterator[Item]:
    """Turn decoded lines (without terminators) into events and comments, as a browser would,
    except that an event's `id` is the one given in that event (None when it had no id line)."""
    data: list[str] = []
    ident: str | None = None
    event: str | None = None
    retry: int | None = None
    seen_field = False
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(ident, "\n".join(data), event, retry)
            data, ident, event, retry, seen_field = [], None, None, None, False
            continue
        if line.startswith(":"):
            yield SseComment(line[1:].lstrip(" "))
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        seen_field = True
        if name == "data":
            data.append(value)
        elif name == "id":
            if "\0" not in value:
                ident = value
        elif name == "event":
            event = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    # An unterminated final event is discarded, as the standard says.
    del seen_field
