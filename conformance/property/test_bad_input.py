"""The bad-input battery (battery.py) against every operation of every API.

Each malformed request must be answered, within a bounded time, with a documented 4xx carrying the
API's own error envelope; never a 5xx, never a hang; and state afterwards is unchanged: the
battery's tenant holds as many jobs after each test as before it (no half-created jobs). The
requests carry valid credentials of the battery identity (targets.py: `[auvy.battery]`,
`[ava.battery]`, `[strait.battery]`), a tenant only this suite uses, so the count is the battery's
alone to change, under xdist too: a target that wrongly accepted a request (a filterless bulk
cancel, say) harms only that tenant.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import httpx
import pytest

from ..clients.http import Recorder, _redact, tls_context
from ..profile import TargetProfile
from ..report import Exchange
from .battery import BadRequest, battery
from .targets import auth_headers, base_url, battery_identity, spec_document

APIS = ("auvy", "ava", "strait")
DEADLINE_S = 10.0


@functools.cache
def _cases(api: str) -> dict[str, tuple[BadRequest, ...]]:
    """The battery of `api` by operation, in the order it was generated: built once per process,
    since every test would otherwise rebuild every operation's malformations to keep its own."""
    by_operation: dict[str, list[BadRequest]] = {}
    for bad in battery(api, spec_document(api), {}):
        by_operation.setdefault(bad.operation_id, []).append(bad)
    return {op: tuple(cases) for op, cases in by_operation.items()}


def _operations() -> list[Any]:
    return [
        pytest.param(
            api, op, id=f"{api}-{op}", marks=pytest.mark.req(f"{api}.properties.bad-input")
        )
        for api in APIS
        for op in _cases(api)
    ]


def envelope_problem(api: str, body: Any) -> str | None:
    """What is wrong with an error body for `api`'s envelope, or None."""
    if api == "auvy":
        ok = (
            isinstance(body, dict)
            and isinstance(body.get("code"), str)
            and isinstance(body.get("message"), str)
        )
        return None if ok else "not the AUVY envelope {code, message}"
    error = body.get("error") if isinstance(body, dict) else None
    if (
        not isinstance(error, dict)
        or not isinstance(error.get("code"), str)
        or not error.get("message")
    ):
        return f"not the {api} envelope {{error: {{code, message}}}}"
    if api == "ava" and not (error.get("request_id") and error.get("docs_url")):
        return "the AVA envelope lacks request_id or docs_url"
    return None


def _send(http: httpx.Client, url: str, bad: BadRequest, auth: dict[str, str]) -> httpx.Response:
    headers = dict(bad.headers)
    if bad.auth == "valid":
        headers.update(auth)
    elif bad.auth == "malformed":
        # A bare scheme for a bearer key; a wrong value for each of AVA's identity headers.
        headers.update({k: "Bearer" if k == "Authorization" else "wrong value" for k in auth})
    deadline = time.monotonic() + DEADLINE_S
    request = http.build_request(
        bad.method, url + bad.path, params=list(bad.params), headers=headers, content=bad.content
    )
    response = http.send(request, stream=True)
    chunks = []
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if time.monotonic() > deadline:
                break
    finally:
        response.close()
    return httpx.Response(
        response.status_code, headers=response.headers, content=b"".join(chunks), request=request
    )


def _count(http: httpx.Client, api: str, url: str, auth: dict[str, str], project: str) -> int:
    """How many jobs (Strait: runs of `project`) the battery's tenant holds."""
    where: dict[str, tuple[str, dict[str, str | int]]] = {
        "auvy": ("/v1/jobs", {"limit": 100}),
        "ava": ("/v1/ava/jobs", {"limit": 100}),
        "strait": ("/v1/runs", {"project_id": project, "limit": 100}),
    }
    path, params = where[api]
    response = http.get(url + path, params=params, headers=auth)
    body = response.json() if response.status_code == 200 else None
    items = body.get("jobs", body.get("data", body)) if isinstance(body, dict) else body
    if not isinstance(items, list):
        pytest.fail(
            f"cannot count the battery tenant's jobs: GET {path} answered "
            f"{response.status_code} {response.text[:200]}"
        )
    return len(items)


@pytest.mark.parametrize(("api", "operation_id"), _operations())
def test_bad_input_gets_the_error_envelope(
    api: str, operation_id: str, target: str, profile: TargetProfile, recorder: Recorder
) -> None:
    if api not in profile.data:
        pytest.skip(f"the profile has no [{api}] section")
    battery_identity(profile, api)
    auth = auth_headers(profile, api, "battery")
    project = str(profile.need("strait.battery.project_id")) if api == "strait" else ""
    url = base_url(target, profile, api)
    cases = _cases(api)[operation_id]
    problems: list[str] = []
    with httpx.Client(timeout=httpx.Timeout(DEADLINE_S), verify=tls_context()) as http:
        before = _count(http, api, url, auth, project)
        for bad in cases:
            label = f"{bad.method} {bad.path[:60]} [{bad.label}]"
            try:
                response = _send(http, url, bad, auth)
            except httpx.TimeoutException:
                problems.append(f"{label}: no answer within {DEADLINE_S:.0f}s")
                continue
            recorder.add(
                Exchange(
                    method=bad.method,
                    url=str(response.request.url),
                    request_headers=_redact(response.request.headers),
                    request_body=(bad.content or b"")[:2000].decode("utf-8", "replace"),
                    status=response.status_code,
                    response_headers=dict(response.headers),
                    response_body=response.text[:2000],
                )
            )
            status = response.status_code
            if status >= 500:
                problems.append(f"{label}: {status} {response.text[:200]}")
                continue
            if status < 400:
                if bad.strict:
                    problems.append(f"{label}: accepted with {status}")
                continue
            if status not in bad.allowed:
                problems.append(f"{label}: {status} is not a documented error of {operation_id}")
            try:
                body = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            wrong = envelope_problem(api, body)
            if wrong:
                problems.append(f"{label}: {status} {wrong}: {response.text[:200]}")
        after = _count(http, api, url, auth, project)
        if after != before:
            problems.append(f"the battery changed the state: {before} jobs before, {after} after")
    assert not problems, f"{api} {operation_id}:\n  " + "\n  ".join(problems)
