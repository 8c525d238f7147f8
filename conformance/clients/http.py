"""The HTTP client every suite uses: records exchanges for the report, checks each response
against the spec, and waits out 429s as the error table says (only 429 and 5xx are retryable;
the suite never retries a 5xx, since a server error is itself a finding)."""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..checks import ConformanceFailure
from ..report import Exchange
from ..spec_check import ResponseSpec
from .sse import Item, SseEvent, parse

MAX_RECORDED = 20
MAX_BODY = 8_000
MAX_RETRY_AFTER_S = 30.0


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        del self.exchanges[:-MAX_RECORDED]


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + f"... ({len(text) - MAX_BODY} more)"


SECRET_HEADERS = frozenset({"authorization", "x-internal-secret", "cookie"})


def _redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Reports are shared (CI artifacts): keep a credential's first characters, hide the rest."""
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, _, secret = value.partition(" ")
            shown = secret if secret else scheme
            masked = shown[:6] + "…" if len(shown) > 6 else "…"
            value = f"{scheme} {masked}" if secret else masked
        out[name] = value
    return out


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.spec = spec
        self.recorder = recorder
        self.headers = dict(headers or {})
        self.retry_429 = retry_429
        self.total_timeout_s = timeout_s * 2
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
            is_json = response.headers.get("content-type", "").startswith("application/json")
            if is_json and response.content:
                try:
                    body = response.json()
                except json.JSONDecodeError:
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
        self.recorder.add(
            Exchange(
                method=req.method,
                url=str(req.url),
                request_headers=_redact(req.headers),
                request_body=_text(req.content if not req.stream or req.content else b""),
                status=response.status_code,
                response_headers=dict(response.headers.items()),
                response_body=body if body is not None else _text(response.content),
            )
        )

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
    ) -> Iterator[EventStream]:
        """Open an event stream; leaving the block drops the connection (a client disconnect)."""
        merged = dict(self.headers if auth else {})
        merged.update(headers or {})
        merged.setdefault("Accept", "text/event-stream")
        timeout = httpx.Timeout(10.0, read=read_timeout_s)
        with self.http.stream(
            "GET", self.base_url + path, params=params, headers=merged, timeout=timeout
        ) as response:
            stream = EventStream(response, operation_id, self.spec)
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
    """An open event stream: iterate items; every `data:` is checked against the spec."""

    def __init__(self, response: httpx.Response, operation_id: str, spec: ResponseSpec) -> None:
        self.response = response
        self.operation_id = operation_id
        self.spec = spec
        self.items: list[Item] = []
        self.ended = False
        self._iter: Iterator[Item] | None = None

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def __iter__(self) -> Iterator[Item]:
        if self._iter is None:
            self._iter = self._items()
        return self._iter

    def _items(self) -> Iterator[Item]:
        for item in parse(self.response.iter_lines()):
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
                lines.append(f"data: {item.data}")
            else:
                lines.append(f": {item.text}")
        return _text("\n".join(lines))
