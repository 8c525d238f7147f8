"""A strict event-stream parser (WHATWG HTML, "Server-sent events") that also keeps comments.

Browsers and most client libraries drop comments; the suite needs them to see `: ping`
keepalives, and needs every field as sent to check ids.
"""

from __future__ import annotations

import json
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
