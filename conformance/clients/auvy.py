"""AUVY jobs client: one method per operation, plus the waits a scenario needs."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..checks import ConformanceFailure, auvy_error_envelope, body_of
from ..profile import TargetProfile
from .http import ApiClient, EventStream
from .poll import wait_for_status
from .sse import SseComment, SseEvent

TERMINAL = frozenset({"completed", "failed"})
TERMINAL_EVENTS = frozenset({"complete", "error"})
# The document shows a start's body, never its status code; an asynchronous start may say 202.
STARTED = range(200, 300)

# Error answers by status, with the codes the error table gives each.
Answers = Mapping[int, Collection[str]]
NOT_FOUND_CODES = frozenset({"NOT_FOUND", "RESOURCE_NOT_FOUND"})
# FACTS.md: "The status code for a revoked token is not published: choose one (401 or 403) and
# keep it consistent."
REVOKED: Answers = {401: {"AUTH_REQUIRED"}, 403: {"FORBIDDEN"}}
# A share token used for what it does not open. The documents say only that a token is scoped to
# one receptor, not how the refusal reads: no credential for this (401), forbidden (403), or
# nothing of yours here (404) are all refusals that leak nothing.
REFUSED: Answers = {401: {"AUTH_REQUIRED"}, 403: {"FORBIDDEN"}, 404: NOT_FOUND_CODES}
# FACTS.md: "FORBIDDEN / trial_expired / cost_cap 403 (some pages say 402 for the last two)".
BLOCKED_STATUSES = (402, 403)


def revoked_answers(profile: TargetProfile) -> Answers:
    """How a revoked or rotated-out token is refused: what the profile declares
    (`auvy.public.revoked_token_status`), else either answer FACTS.md allows."""
    declared = profile.get("auvy.public.revoked_token_status")
    if declared is None:
        return REVOKED
    if declared not in REVOKED:
        raise ConformanceFailure(
            f"auvy.public.revoked_token_status must be 401 or 403, the profile says {declared!r}"
        )
    return {int(declared): REVOKED[declared]}


def refused(response: httpx.Response | None, answers: Answers) -> int:
    """An AUVY error whose status is one of `answers`, with a code the table gives that status;
    returns the status, so a caller can check a target answers the same everywhere."""
    if response is None or response.status_code not in answers:
        got = "no response" if response is None else str(response.status_code)
        raise ConformanceFailure(
            f"expected a refusal with HTTP {' or '.join(map(str, sorted(answers)))}, got {got}",
            "" if response is None else response.text[:500],
        )
    auvy_error_envelope(response, response.status_code, answers[response.status_code])
    return response.status_code


@dataclass
class StreamRead:
    """What one connection to a job stream delivered."""

    events: list[SseEvent] = field(default_factory=list)
    comments: list[SseComment] = field(default_factory=list)
    ended: bool = False
    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    response: httpx.Response | None = None  # kept, body read, when the status was not 200

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events if e.id is not None]

    @property
    def payloads(self) -> list[Any]:
        return [e.json() for e in self.events]

    @property
    def terminal(self) -> Any | None:
        for payload in self.payloads:
            if payload.get("type") in TERMINAL_EVENTS:
                return payload
        return None


class AuvyClient:
    def __init__(self, api: ApiClient, *, poll_interval_s: float = 0.05) -> None:
        self.api = api
        self.poll_interval_s = poll_interval_s

    # -- one call per operation --------------------------------------------------------------

    def create_job(self, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request("createJob", "POST", "/v1/jobs", json_body=body, **kw)

    def execute_pathway(self, pathway_id: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.api.request(
            "executePathway", "POST", f"/v1/pathways/{pathway_id}/execute", json_body=body, **kw
        )

    def list_jobs(self, **kw: Any) -> httpx.Response:
        return self.api.request("listJobs", "GET", "/v1/jobs", **kw)

    def get_status(self, job_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("getJobStatus", "GET", f"/v1/jobs/{job_id}/status", **kw)

    def cancel(self, job_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("cancelJob", "POST", f"/v1/jobs/{job_id}/cancel", **kw)

    def resume(self, job_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("resumeJob", "POST", f"/v1/jobs/{job_id}/resume", **kw)

    def submit_input(self, job_id: str, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request(
            "submitJobInput", "POST", f"/v1/jobs/{job_id}/input", json_body=body, **kw
        )

    def transcribe(self, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request("transcribe", "POST", "/v1/transcribe", json_body=body, **kw)

    def chat(self, trace_id: str, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request("chatTrace", "POST", f"/v1/chat/{trace_id}", json_body=body, **kw)

    # -- receptors, shares, interventions (API key) ------------------------------------------

    def get_receptor(self, slug: str, **kw: Any) -> httpx.Response:
        return self.api.request("getReceptor", "GET", f"/v1/receptors/{slug}", **kw)

    def share(
        self, op: str, workspace: str, slug: str, body: Any = None, **kw: Any
    ) -> httpx.Response:
        """op: createShare | getShare | revokeShare | rotateShare."""
        method, suffix = {
            "createShare": ("POST", ""),
            "getShare": ("GET", ""),
            "revokeShare": ("DELETE", ""),
            "rotateShare": ("POST", "/rotate"),
        }[op]
        path = f"/v1/receptors/{workspace}/{slug}/share{suffix}"
        return self.api.request(op, method, path, json_body=body, **kw)

    def list_interventions(self, **kw: Any) -> httpx.Response:
        return self.api.request("listInterventions", "GET", "/v1/interventions", **kw)

    def get_intervention(self, intervention_id: str, **kw: Any) -> httpx.Response:
        return self.api.request(
            "getIntervention", "GET", f"/v1/interventions/{intervention_id}", **kw
        )

    def respond(self, intervention_id: str, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request(
            "respondIntervention",
            "POST",
            f"/v1/interventions/{intervention_id}/respond",
            json_body=body,
            **kw,
        )

    # -- public routes (share token, optional user JWT; never the API key) ----------------------

    def public(
        self,
        operation_id: str,
        method: str,
        path: str,
        *,
        token: str | None,
        jwt: str | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        query = dict(params or {})
        if token is not None:
            query["t"] = token
        headers = {"Authorization": f"Bearer {jwt}"} if jwt else None
        return self.api.request(
            operation_id,
            method,
            path,
            params=query or None,
            json_body=json_body,
            headers=headers,
            auth=False,
        )

    @contextlib.contextmanager
    def open_public_stream(
        self,
        job_id: str,
        token: str | None,
        after: str | None = None,
        *,
        jwt: str | None = None,
        read_timeout_s: float = 15.0,
        **params: Any,
    ) -> Iterator[EventStream]:
        """Extra keyword arguments are query parameters (workspace, receptor, trace_id)."""
        query = {k: v for k, v in params.items() if v is not None}
        if token is not None:
            query["t"] = token
        if after is not None:
            query["after"] = after
        headers = {"Authorization": f"Bearer {jwt}"} if jwt else None
        with self.api.stream(
            "streamPublicJob",
            f"/v1/public/jobs/{job_id}/stream",
            params=query,
            headers=headers,
            auth=False,
            read_timeout_s=read_timeout_s,
        ) as stream:
            yield stream

    @contextlib.contextmanager
    def open_stream(
        self, job_id: str, after: str | None = None, **kw: Any
    ) -> Iterator[EventStream]:
        params = {"after": after} if after is not None else None
        with self.api.stream("streamJob", f"/v1/jobs/{job_id}/stream", params=params, **kw) as s:
            yield s

    # -- scenario helpers ----------------------------------------------------------------------

    def start(self, pathway_id: str, input: Mapping[str, Any] | None = None) -> str:
        response = self.create_job({"pathway_id": pathway_id, "input": dict(input or {})})
        if response.status_code not in STARTED:
            raise ConformanceFailure(
                "could not start a job", f"{response.status_code}: {response.text[:300]}"
            )
        return str(body_of(response)["job_id"])

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.get_status(job_id)
        if response.status_code != 200:
            raise ConformanceFailure(
                f"status of job {job_id} answered {response.status_code}", response.text[:300]
            )
        body: dict[str, Any] = body_of(response)
        return body

    def job_ids(self, **filters: Any) -> list[str]:
        """Every job id the list returns for `filters`, page by page until `total` (which may
        grow while other tests start jobs): nothing is missed whatever the list's order."""
        seen: list[str] = []
        offset, page_size = 0, 100
        for _ in range(1000):
            response = self.list_jobs(params={**filters, "limit": page_size, "offset": offset})
            if response.status_code != 200:
                raise ConformanceFailure(
                    f"listing jobs {filters} answered {response.status_code}", response.text[:300]
                )
            body = body_of(response)
            page = body["jobs"]
            seen.extend(str(job["job_id"]) for job in page)
            offset += page_size
            if not page or offset >= int(body["total"]):
                return seen
        raise ConformanceFailure(f"listing jobs {filters} did not end after 1000 pages")

    def wait_for(
        self, job_id: str, statuses: Collection[str], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the job reaches one of `statuses`; fail naming the last status seen."""
        return wait_for_status(
            lambda: self.status(job_id),
            statuses,
            # Waiting for a terminal status, any terminal one ends the wait by matching or not.
            final=() if set(statuses) & TERMINAL else TERMINAL,
            timeout_s=timeout_s,
            interval_s=self.poll_interval_s,
            what=f"job {job_id}",
            describe=lambda last: f"progress {last.get('progress')}",
        )

    def read_stream(
        self,
        job_id: str,
        after: str | None = None,
        *,
        max_events: int | None = None,
        until_comment: bool = False,
        public_token: str | None = None,
        **kw: Any,
    ) -> StreamRead:
        """Read one connection: until the server ends it, `max_events` arrive, or (with
        `until_comment`) the first comment; leaving early drops the connection. With
        `public_token` the public share route is read instead of the private one."""
        out = StreamRead()
        opener = (
            self.open_public_stream(job_id, public_token, after, **kw)
            if public_token is not None
            else self.open_stream(job_id, after, **kw)
        )
        with opener as stream:
            out.status_code = stream.status_code
            out.headers = dict(stream.response.headers)
            if stream.status_code != 200:
                out.response = stream.response
                return out
            try:
                for item in stream:
                    if isinstance(item, SseComment):
                        out.comments.append(item)
                        if until_comment:
                            return out
                        continue
                    out.events.append(item)
                    if max_events is not None and len(out.events) >= max_events:
                        return out
            except httpx.ReadTimeout:
                # Silence after the terminal event means the server did not close the stream;
                # silence before it is a stalled stream, which the caller must see as a failure.
                if out.terminal is None:
                    raise
                return out
            out.ended = True
        return out
