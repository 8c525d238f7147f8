"""The bad-input battery (battery.py) against every operation of every API.

Each malformed request must be answered, within a bounded time, never with a 5xx; an error carries
the API's own envelope, a status the operation may answer (the spec's documented statuses, with
400 and 422 interchangeable where FACTS.md gives the validation code both, and 413/415 where HTTP
defines them) and the code the documented table gives that status; what the documents make invalid
must be refused; and state afterwards is unchanged: the battery's tenant holds as many jobs after
each test as before it (no half-created jobs). The reference test (a decision) also demands that
every malformation the reference refuses is refused, with a status its spec documents.

The requests carry valid credentials of the battery identity (targets.py: `[auvy.battery]`,
`[ava.battery]`, `[strait.battery]`), a tenant only this suite uses, so the count is the battery's
alone to change, under xdist too: a target that wrongly accepted a request (a filterless bulk
cancel, say) harms only that tenant.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
# Requests of one operation's battery in flight at once.
PARALLEL = 4


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
            api,
            op,
            mode,
            id=f"{api}-{op}-{mode}",
            marks=pytest.mark.req(
                f"{api}.properties.bad-input" + ("-rejected" if mode == "reference" else "")
            ),
        )
        for api in APIS
        for op in _cases(api)
        for mode in ("document", "reference")
    ]


# The codes each API's documented error table gives a status (AUVY: its error table, with 402 that
# FACTS.md says some pages use; AVA and Strait: FACTS.md). A status outside the table (413, 415)
# has no documented code; the envelope is still required.
CODES: Mapping[str, Mapping[int, frozenset[str]]] = {
    "auvy": {
        400: frozenset({"VALIDATION_ERROR"}),
        401: frozenset({"AUTH_REQUIRED"}),
        402: frozenset({"trial_expired", "cost_cap"}),
        403: frozenset({"FORBIDDEN", "trial_expired", "cost_cap"}),
        404: frozenset({"NOT_FOUND", "RESOURCE_NOT_FOUND"}),
        429: frozenset({"RATE_LIMIT"}),
    },
    "ava": {
        400: frozenset({"validation_error"}),
        401: frozenset({"unauthorized"}),
        403: frozenset({"forbidden", "tenant_suspended"}),
        404: frozenset({"resource_not_found"}),
        409: frozenset({"resource_conflict"}),
        422: frozenset({"validation_error"}),
        429: frozenset({"rate_limited"}),
    },
    "strait": {
        400: frozenset({"bad_request"}),
        401: frozenset({"authentication_required"}),
        403: frozenset({"forbidden"}),
        404: frozenset({"not_found"}),
        409: frozenset({"conflict"}),
        422: frozenset({"validation_failed"}),
        429: frozenset({"rate_limited"}),
    },
}


def allowed_statuses(api: str, bad: BadRequest, reference: bool) -> frozenset[int]:
    """The error statuses `bad` may be answered with. The reference answers only what its spec
    documents; another target may also use the status the documents give the same error."""
    if reference:
        return bad.allowed
    allowed = set(bad.allowed)
    if api in ("ava", "strait") and allowed & {400, 422}:
        # AVA: "validation_error 400/422"; Strait: bad_request 400 and validation_failed 422.
        allowed |= {400, 422}
    if bad.content is not None:
        allowed |= {413, 415}  # HTTP's own answers to a body it will not take
    if "invalid" in bad.label:
        allowed.add(414)  # a 600-character id may be a URI too long for the target
    return frozenset(allowed)


def code_problem(api: str, status: int, body: Any) -> str | None:
    """A code that the documented table does not give this status, or None."""
    codes = CODES[api].get(status)
    if codes is None:
        return None
    error = body.get("error") if api != "auvy" and isinstance(body, dict) else body
    code = error.get("code") if isinstance(error, dict) else None
    if code in codes:
        return None
    return f"code {code!r} is not what the table gives {status} ({', '.join(sorted(codes))})"


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


def _send(
    http: httpx.Client, url: str, bad: BadRequest, auth: dict[str, str]
) -> tuple[httpx.Response, bool]:
    """The answer, its body read until it ends or the deadline passes; whether it ended."""
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
    ended = True
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if time.monotonic() > deadline:
                ended = False
                break
    finally:
        response.close()
    # iter_bytes already undid any content coding: the copy must not claim one, or httpx would
    # decode the body a second time.
    headers_read = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length")
    ]
    answer = httpx.Response(
        response.status_code, headers=headers_read, content=b"".join(chunks), request=request
    )
    return answer, ended


def _send_all(
    http: httpx.Client, url: str, cases: Sequence[BadRequest], auth: dict[str, str]
) -> list[tuple[httpx.Response, bool] | None]:
    """Every case's answer, in order (None: none within the deadline). A few at a time: each
    waits on the target, and under network latency one at a time made the battery the slowest
    suite by far. The state check brackets all of them, so their order does not matter."""

    def one(bad: BadRequest) -> tuple[httpx.Response, bool] | None:
        try:
            return _send(http, url, bad, auth)
        except httpx.TimeoutException:
            return None

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return list(pool.map(one, cases))


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


@pytest.mark.parametrize(("api", "operation_id", "mode"), _operations())
def test_bad_input_gets_the_error_envelope(
    api: str,
    operation_id: str,
    mode: str,
    target: str,
    profile: TargetProfile,
    recorder: Recorder,
) -> None:
    if api not in profile.data:
        pytest.skip(f"the profile has no [{api}] section")
    battery_identity(profile, api)
    reference = mode == "reference"
    auth = auth_headers(profile, api, "battery")
    project = str(profile.need("strait.battery.project_id")) if api == "strait" else ""
    url = base_url(target, profile, api)
    cases = _cases(api)[operation_id]
    problems: list[str] = []
    with httpx.Client(timeout=httpx.Timeout(DEADLINE_S), verify=tls_context()) as http:
        before = _count(http, api, url, auth, project)
        for bad, sent in zip(cases, _send_all(http, url, cases, auth), strict=True):
            label = f"{bad.method} {bad.path[:60]} [{bad.label}]"
            if sent is None:
                problems.append(f"{label}: no answer within {DEADLINE_S:.0f}s")
                continue
            response, ended = sent
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
            if not ended:
                problems.append(f"{label}: {status}, but the body did not end within {DEADLINE_S}s")
                continue
            if status >= 500:
                problems.append(f"{label}: {status} {response.text[:200]}")
                continue
            if status < 400:
                must_refuse = bad.refused_by_reference if reference else bad.strict
                if must_refuse:
                    problems.append(f"{label}: accepted with {status}")
                continue
            if status not in allowed_statuses(api, bad, reference):
                problems.append(f"{label}: {status} is not a documented error of {operation_id}")
            try:
                body = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            wrong = envelope_problem(api, body) or code_problem(api, status, body)
            if wrong:
                problems.append(f"{label}: {status} {wrong}: {response.text[:200]}")
        after = _count(http, api, url, auth, project)
        if after != before:
            problems.append(f"the battery changed the state: {before} jobs before, {after} after")
    assert not problems, f"{api} {operation_id} ({mode}):\n  " + "\n  ".join(problems)
