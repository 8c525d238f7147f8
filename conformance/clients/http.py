"""The HTTP client every suite uses: records exchanges for the report, checks each response
against the spec, and waits out 429s as the error table says (only 429 and 5xx are retryable;
the suite never retries a 5xx, since a server error is itself a finding).

It reads tolerantly whatever a correct server may send: any JSON formatting, media types in any
case and with parameters (`application/json; charset=utf-8`, `application/problem+json`), gzip or
deflate content coding, chunked or length-delimited bodies, and event streams as sse.py reads
them. Whether a body has the right fields is the spec's business (spec_check.py), never the
client's. Every read has a deadline: a whole response within twice the request timeout, an event
stream within `stream_timeout_s` however busily the server keeps it alive.

Everything recorded goes through the run's masker (conformance.masking) first."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..checks import ConformanceFailure
from ..masking import SECRET_HEADERS, Masker, run_masker
from ..report import Exchange
from ..spec_check import ResponseSpec
from .sse import Item, LineDecoder, SseComment, SseEvent, parse

MAX_RECORDED = 20
MAX_BODY = 8_000
MAX_RETRY_AFTER_S = 30.0
DEFAULT_STREAM_TIMEOUT_S = 60.0


@dataclass
class Recorder:
    """The exchanges of one test, masked: secrets a response shows (a new share token, a key)
    are learned by the run's masker first, so they are hidden here and wherever they recur."""

    exchanges: list[Exchange] = field(default_factory=list)
    masker: Masker = field(default_factory=run_masker)

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(self.mask(exchange))
        del self.exchanges[:-MAX_RECORDED]

    def mask(self, exchange: Exchange) -> Exchange:
        return mask_exchange(exchange, self.masker)


def mask_exchange(exchange: Exchange, masker: Masker) -> Exchange:
    """`exchange` with every secret it shows, or that the masker knows, masked (idempotent)."""
    for text in (exchange.url, exchange.request_body, exchange.response_body):
        masker.learn(text)
    for headers in (exchange.request_headers, exchange.response_headers):
        for name, value in headers.items():
            if name.lower() in SECRET_HEADERS:
                masker.learn(f"{name}: {value}")
    return dataclasses.replace(
        exchange,
        url=masker.text(exchange.url),
        request_headers=masker.headers(exchange.request_headers),
        request_body=masker.text(exchange.request_body),
        response_headers=masker.headers(exchange.response_headers),
        response_body=masker.text(exchange.response_body),
    )


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + f"... ({len(text) - MAX_BODY} more)"


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Reports are shared (CI artifacts): keep a credential's first characters, hide the rest."""
    return run_masker().headers(headers)


def is_json(content_type: str | None) -> bool:
    """application/json or any +json type, in any case, whatever its parameters."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle (about 80 ms), which
    every test would otherwise pay for each client it makes."""
    return httpx.create_ssl_context()


class ApiClient:
    def __init__(
        self,
        base_url: str,
        spec: ResponseSpec,
        recorder: Recorder,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 15.0,
        retry_429: int = 3,
        stream_timeout_s: float = DEFAULT_STREAM_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.spec = spec
        self.recorder = recorder
        self.headers = dict(headers or {})
        self.retry_429 = retry_429
        self.total_timeout_s = timeout_s * 2
        self.stream_timeout_s = stream_timeout_s
        self.http = httpx.Client(timeout=timeout_s, verify=tls_context())

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        operation_id: str | None,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send, record, spec-check (when `operation_id` is given) and return the response."""
        merged = dict(self.headers if auth else {})
        merged.update(headers or {})
        if json_body is not None:
            content = json.dumps(json_body)
            merged.setdefault("Content-Type", "application/json")
        attempts = 0
        while True:
            response = self._bounded(method, path, content, params, merged)
            self._record(response)
            if response.status_code == 429 and attempts < self.retry_429:
                attempts += 1
                time.sleep(min(MAX_RETRY_AFTER_S, _retry_after(response)))
                continue
            break
        if operation_id is not None:
            body = None
            if is_json(response.headers.get("content-type")) and response.content:
                try:
                    body = response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise ConformanceFailure(
                        f"{operation_id}: body declared JSON is not JSON", response.text[:300]
                    ) from None
            self.spec.check(
                operation_id,
                response.status_code,
                response.headers,
                body,
                has_body=bool(response.content),
            )
        return response

    def _bounded(
        self,
        method: str,
        path: str,
        content: bytes | str | None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """Send and read the whole body within a total deadline: keepalives on an endless body
        (an event stream where none was expected) would otherwise defeat the read timeout."""
        deadline = time.monotonic() + self.total_timeout_s
        request = self.http.build_request(
            method, self.base_url + path, content=content, params=params, headers=headers
        )
        response = self.http.send(request, stream=True)
        chunks = []
        try:
            # iter_bytes undoes gzip/deflate content coding and chunked transfer coding; the
            # re-wrapped response below therefore drops Content-Encoding and Content-Length.
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise ConformanceFailure(
                        f"{method} {path}: the response did not finish within "
                        f"{self.total_timeout_s:.0f}s",
                        f"status {response.status_code}, "
                        f"content-type {response.headers.get('content-type')}",
                    )
        finally:
            response.close()
        # Re-wrap the decoded bytes so callers get an ordinary, fully read response.
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length")
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=b"".join(chunks), request=request
        )

    def _record(self, response: httpx.Response, body: str | None = None) -> None:
        req = response.request
        exchange = Exchange(
            method=req.method,
            url=str(req.url),
            request_headers=dict(req.headers.items()),
            request_body=_text(req.content if not req.stream or req.content else b""),
            status=response.status_code,
            response_headers=dict(response.headers.items()),
            response_body=body if body is not None else _text(response.content),
        )
        # Masked here too, not only in Recorder.add: subclasses (the property suites' recorder)
        # may override add.
        self.recorder.add(mask_exchange(exchange, getattr(self.recorder, "masker", run_masker())))

    @contextlib.contextmanager
    def stream(
        self,
        operation_id: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        read_timeout_s: float = 15.0,
        timeout_s: float | None = None,
        awaiting: str | None = None,
    ) -> Iterator[EventStream]:
        """Open an event stream; leaving the block drops the connection (a client disconnect).

        Silence longer than `read_timeout_s` raises httpx.ReadTimeout (callers decide whether
        silence is a finding); the whole stream must deliver what the caller awaits within
        `timeout_s` (default: the profile's `<api>.stream_timeout_s`), keepalives or not."""
        merged = dict(self.headers if auth else {})
        merged.update(headers or {})
        merged.setdefault("Accept", "text/event-stream")
        total = self.stream_timeout_s if timeout_s is None else timeout_s
        timeout = httpx.Timeout(min(10.0, total), read=min(read_timeout_s, total))
        with self.http.stream(
            "GET", self.base_url + path, params=params, headers=merged, timeout=timeout
        ) as response:
            stream = EventStream(response, operation_id, self.spec, timeout_s=total)
            if awaiting is not None:
                stream.awaiting(awaiting)
            try:
                if response.status_code != 200:
                    response.read()
                    self._record(response)
                    self.spec.check(
                        operation_id,
                        response.status_code,
                        response.headers,
                        _json_or_none(response),
                    )
                else:
                    self.spec.check(operation_id, 200, response.headers, None)
                yield stream
            finally:
                if response.status_code == 200:
                    self._record(response, stream.transcript())


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "1")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


class EventStream:
    """An open event stream: iterate items; every `data:` is checked against the spec.

    Iteration ends when the server ends the stream; it raises ConformanceFailure once the
    stream's deadline passes, naming what the caller awaited (`awaiting`) and the last items."""

    def __init__(
        self,
        response: httpx.Response,
        operation_id: str,
        spec: ResponseSpec,
        *,
        timeout_s: float = DEFAULT_STREAM_TIMEOUT_S,
    ) -> None:
        self.response = response
        self.operation_id = operation_id
        self.spec = spec
        self.items: list[Item] = []
        self.ended = False
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.awaited = "the end of the stream"
        self._iter: Iterator[Item] | None = None

    def awaiting(self, what: str) -> EventStream:
        """Say what the caller reads for ("a terminal event", "event 3-0"), for the failure
        message should the deadline pass first; returns the stream, to chain."""
        self.awaited = what
        return self

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def __iter__(self) -> Iterator[Item]:
        if self._iter is None:
            self._iter = self._items()
        return self._iter

    def _chunks(self) -> Iterator[bytes]:
        for chunk in self.response.iter_bytes():
            # Checked per chunk, not per event: keepalive comments or a trickle of bytes must
            # not keep a stream that never delivers what is awaited open forever.
            self._check_deadline()
            yield chunk

    def _lines(self, chunks: Iterable[bytes]) -> Iterator[str]:
        decoder = LineDecoder()
        for chunk in chunks:
            yield from decoder.feed(chunk)
        yield from decoder.close()

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise ConformanceFailure(
                f"{self.operation_id}: awaited {self.awaited} within {self.timeout_s:g} s",
                f"got: {self.summary()}",
            )

    def summary(self, last: int = 5) -> str:
        """The last items read, briefly, for failure messages."""
        if not self.items:
            return "nothing"
        shown = []
        for item in self.items[-last:]:
            if isinstance(item, SseComment):
                shown.append(f": {item.text[:40]}")
            else:
                ident = f"id {item.id} " if item.id is not None else ""
                shown.append(f"{ident}data {item.data[:120]}")
        skipped = len(self.items) - len(shown)
        head = f"{len(self.items)} items, the last {len(shown)}: " if skipped else ""
        return head + "; ".join(shown)

    def _items(self) -> Iterator[Item]:
        for item in parse(self._lines(self._chunks())):
            self.items.append(item)
            if isinstance(item, SseEvent):
                try:
                    payload = json.loads(item.data)
                except json.JSONDecodeError:
                    raise ConformanceFailure(
                        f"{self.operation_id}: event data is not JSON", item.data[:300]
                    ) from None
                self.spec.check_event(self.operation_id, payload)
            yield item
        self.ended = True

    def transcript(self) -> str:
        lines = []
        for item in self.items:
            if isinstance(item, SseEvent):
                if item.id is not None:
                    lines.append(f"id: {item.id}")
                if item.event is not None:
                    lines.append(f"event: {item.event}")
                if item.retry is not None:
                    lines.append(f"retry: {item.retry}")
                lines.extend(f"data: {line}" for line in item.data.split("\n"))
                lines.append("")
            else:
                lines.append(f": {item.text}")
        return _text("\n".join(lines))
