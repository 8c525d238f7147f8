"""One exchange the proxy forwarded, recorded compactly: bodies capped, stream events parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from conformance import report
from conformance.masking import Masker

# What is kept of a body for checking and reporting; a longer body is marked truncated and not
# schema-checked (a cut JSON document would not parse).
BODY_CAP = 256 * 1024
# Events kept per stream response, for a report to show; later ones are counted, not kept (see
# `events_dropped`). The checks see every event as it passes (`Checker.stream_event`).
EVENTS_CAP = 50
# What a report shows of one body.
REPORT_BODY_CAP = 4_000


@dataclass(slots=True)
class Event:
    id: str | None
    data: str
    event: str | None = None
    at: float = 0.0  # time.monotonic() when the proxy read it

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(slots=True)
class Exchange:
    seq: int
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes = b""
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    body_truncated: bool = False
    # An event stream's events (None for any other response).
    events: list[Event] | None = None
    events_dropped: int = 0
    # The stream checks' running summary (checks.StreamProgress) of an event-stream answer.
    progress: Any = None
    # The upstream ended the response itself (False: the client went away first, or it failed).
    complete: bool = False
    client_closed: bool = False
    error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def media_type(self) -> str:
        return self.response_headers.get("content-type", "").split(";")[0].strip().lower()

    def json_body(self) -> Any:
        """The response body as JSON; raises ValueError when it is not (or was truncated)."""
        if self.body_truncated:
            raise ValueError("body truncated")
        return json.loads(self.response_body.decode("utf-8"))

    def add_event(self, event: Event) -> None:
        if self.events is None:
            self.events = []
        if len(self.events) < EVENTS_CAP:
            self.events.append(event)
        else:
            self.events_dropped += 1

    def brief(self) -> str:
        """`GET /auvy/v1/jobs/x/stream?after=1-0 -> 200` for messages and the live page."""
        query = f"?{self.query}" if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status if self.status else 'no answer'}"

    def for_report(self, masker: Masker, base_url: str) -> report.Exchange:
        """The suite's report form, every credential masked."""
        for value in (self.query, *self.request_headers.values(), self._body_text()):
            masker.learn(value)
        if self.events is not None:
            shown = "\n".join(
                f"id: {e.id}\ndata: {e.data}\n" if e.id is not None else f"data: {e.data}\n"
                for e in self.events
            )
            more = self.events_dropped
            body = shown + (f"\n[{more} more events]" if more > 0 else "")
        else:
            body = self._body_text()
        query = f"?{self.query}" if self.query else ""
        return report.Exchange(
            method=self.method,
            url=masker.text(f"{base_url}{self.path}{query}"),
            request_headers=masker.headers(self.request_headers),
            request_body=masker.text(_capped(self.request_body.decode("utf-8", "replace"))),
            status=self.status,
            response_headers=masker.headers(self.response_headers),
            response_body=masker.text(_capped(body)),
        )

    def _body_text(self) -> str:
        return self.response_body.decode("utf-8", "replace")


def _capped(text: str) -> str:
    if len(text) <= REPORT_BODY_CAP:
        return text
    return text[:REPORT_BODY_CAP] + f"… [{len(text) - REPORT_BODY_CAP} more characters]"
