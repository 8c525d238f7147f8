"""The suite's own HTTP client: what it retries (429 only, after Retry-After), what it records,
and that no response can hang it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from conformance.checks import ConformanceFailure
from conformance.clients.http import ApiClient, Recorder, is_json
from conformance.spec_check import ResponseSpec


def client_with(handler: httpx.MockTransport, timeout_s: float = 15.0) -> ApiClient:
    api = ApiClient(
        "http://target",
        ResponseSpec.for_api("auvy"),
        Recorder(),
        headers={"Authorization": "Bearer auvy_secret_key_123"},
        timeout_s=timeout_s,
    )
    api.http.close()
    api.http = httpx.Client(transport=handler)
    return api


def counting(
    statuses: list[int], headers: dict[str, str] | None = None
) -> tuple[httpx.MockTransport, list[int]]:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        status = statuses[min(len(seen), len(statuses) - 1)]
        seen.append(status)
        return httpx.Response(status, json={"code": "X", "message": "m"}, headers=headers or {})

    return httpx.MockTransport(handle), seen


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 503])
def test_other_errors_are_never_retried(status: int) -> None:
    transport, seen = counting([status, 200])
    response = client_with(transport).request(None, "GET", "/v1/jobs")
    assert response.status_code == status and seen == [status]


def test_429_is_retried_after_retry_after() -> None:
    transport, seen = counting([429, 429, 200], {"Retry-After": "0"})
    assert client_with(transport).request(None, "GET", "/v1/jobs").status_code == 200
    assert seen == [429, 429, 200]


def test_429_retries_are_bounded() -> None:
    transport, seen = counting([429], {"Retry-After": "0"})
    response = client_with(transport).request(None, "GET", "/v1/jobs")
    assert response.status_code == 429 and len(seen) == 4  # the first try and three retries


def test_retry_after_is_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    transport, _ = counting([429, 200], {"Retry-After": "7"})
    client_with(transport).request(None, "GET", "/v1/jobs")
    assert waits == [7.0]


def test_credentials_are_masked_in_recorded_exchanges() -> None:
    transport, _ = counting([200])
    api = client_with(transport)
    api.request(None, "GET", "/v1/jobs")
    recorded = api.recorder.exchanges[-1]
    assert "auvy_secret_key_123" not in str(recorded.to_dict())
    assert recorded.request_headers["authorization"].startswith("Bearer auvy_s")


def test_an_endless_body_fails_within_the_deadline() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            time.sleep(0.05)
            yield b": ping\n\n"

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=endless())

    api = client_with(httpx.MockTransport(handle), timeout_s=0.25)
    started = time.monotonic()
    with pytest.raises(ConformanceFailure, match="did not finish"):
        api.request(None, "GET", "/v1/jobs/x/stream")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("content_type", "json_like"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("APPLICATION/JSON", True),
        ("application/problem+json", True),
        ("application/vnd.acme.job+json; v=2", True),
        ("text/plain", False),
        ("application/jsonl", False),
        (None, False),
    ],
)
def test_json_bodies_are_recognised_by_media_type(
    content_type: str | None, json_like: bool
) -> None:
    assert is_json(content_type) is json_like


def test_a_token_in_a_response_is_masked_in_later_recordings() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"share_token": "shr_minted_during_the_run_1"})

    api = client_with(httpx.MockTransport(handle))
    api.request(None, "POST", "/v1/receptors/r/share")
    api.request(None, "GET", "/v1/public/x", params={"t": "shr_minted_during_the_run_1"})
    shown = json.dumps([e.to_dict() for e in api.recorder.exchanges], ensure_ascii=False)
    assert "shr_minted_during_the_run_1" not in shown and "shr_mi…" in shown
