"""Reusable claims, each named as the claim it makes, and the failure type they raise.

A failed claim raises `ConformanceFailure`, an AssertionError carrying a title and detail, so
pytest reports it as a test failure and the report can show what was claimed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Sequence
from typing import Any

import httpx

from .stream_ids import InvalidStreamId, StreamId


class ConformanceFailure(AssertionError):
    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConformanceFailure(
            "response body is not JSON", f"{response.status_code}: {response.text[:300]!r}"
        ) from None


def status_is(response: httpx.Response | None, expected: int | Collection[int]) -> None:
    allowed = {expected} if isinstance(expected, int) else set(expected)
    if response is None:
        raise ConformanceFailure(f"expected HTTP {sorted(allowed)}, got no response")
    if response.status_code not in allowed:
        raise ConformanceFailure(
            f"expected HTTP {' or '.join(map(str, sorted(allowed)))}, got {response.status_code}",
            response.text[:500],
        )


def auvy_error_envelope(
    response: httpx.Response | None, status: int, codes: str | Collection[str]
) -> dict[str, Any]:
    """An AUVY error: the status, a flat {code, message} body, and a code from the table."""
    allowed = {codes} if isinstance(codes, str) else set(codes)
    status_is(response, status)
    assert response is not None
    body = body_of(response)
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise ConformanceFailure("error body is not the AUVY envelope {code, message}", repr(body))
    if not isinstance(body.get("message"), str):
        raise ConformanceFailure("error body has no message string", repr(body))
    if body["code"] not in allowed:
        raise ConformanceFailure(
            f"error code {body['code']!r} is not {' or '.join(sorted(allowed))}", repr(body)
        )
    return body


def ava_error_envelope(
    response: httpx.Response | None,
    status: int,
    codes: str | Collection[str],
    field: str | None = None,
) -> dict[str, Any]:
    """An AVA error: the status, {"error": {code, message, request_id, docs_url}} and a code from
    FACTS.md's table; with `field`, `error.fields` must name it."""
    allowed = {codes} if isinstance(codes, str) else set(codes)
    status_is(response, status)
    assert response is not None
    body = body_of(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        raise ConformanceFailure(
            "error body is not the AVA envelope {error: {code, ...}}", repr(body)
        )
    for name in ("message", "request_id", "docs_url"):
        if not isinstance(error.get(name), str) or not error[name]:
            raise ConformanceFailure(f"error.{name} is missing or empty", repr(body))
    if error["code"] not in allowed:
        raise ConformanceFailure(
            f"error code {error['code']!r} is not {' or '.join(sorted(allowed))}", repr(body)
        )
    if field is not None:
        fields = error.get("fields")
        if not isinstance(fields, dict) or field not in fields:
            raise ConformanceFailure(f"error.fields does not name {field}", repr(body))
    return error


def no_leak(response: httpx.Response, *secrets: str) -> None:
    """A rejection must not echo data it protects (job ids, results, other tenants' names)."""
    text = response.text
    leaked = [s for s in secrets if s and s in text]
    if leaked:
        raise ConformanceFailure("error response leaks protected data", ", ".join(leaked))


def event_ids_strictly_increase(ids: Sequence[str]) -> None:
    parsed = []
    for ident in ids:
        try:
            parsed.append(StreamId.parse(ident))
        except InvalidStreamId:
            raise ConformanceFailure(
                "event id is not a Redis stream id <ms>-<seq>", ident
            ) from None
    for a, b in itertools.pairwise(parsed):
        if not a < b:
            raise ConformanceFailure(
                "event ids do not strictly increase", f"{a.encode()} then {b.encode()}"
            )


def strait_error_envelope(
    response: httpx.Response | None, status: int, codes: str | Collection[str]
) -> dict[str, Any]:
    """A Strait error: the status, {"error": {code, message, details?}, "request_id"?} and a code
    from FACTS.md's table."""
    allowed = {codes} if isinstance(codes, str) else set(codes)
    status_is(response, status)
    assert response is not None
    body = body_of(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        raise ConformanceFailure(
            "error body is not the Strait envelope {error: {code, message}}", repr(body)[:300]
        )
    if not isinstance(error.get("message"), str) or not error["message"]:
        raise ConformanceFailure("error.message is missing or empty", repr(body)[:300])
    if error["code"] not in allowed:
        raise ConformanceFailure(
            f"error code {error['code']!r} is not {' or '.join(sorted(allowed))}", repr(body)
        )
    return error
