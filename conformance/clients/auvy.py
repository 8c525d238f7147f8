"""AUVY jobs client: one method per operation, plus the waits a scenario needs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..checks import ConformanceFailure, body_of
from .http import ApiClient, EventStream
from .sse import SseComment, SseEvent

TERMINAL = frozenset({"completed", "failed"})
TERMINAL_EVENTS = frozenset({"complete", "error"})


@dataclass
class StreamRead:
    """What one connection to a job stream delivered."""

    events: list[SseEvent] = field(default_factory=list)
    comments: list[SseComment] = field(default_factory=list)
    ended: bool = False
    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

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
        if response.status_code // 100 != 2:
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

    def wait_for(
        self, job_id: str, statuses: Collection[str], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the job reaches one of `statuses`; fail naming the last status seen."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.status(job_id)
            if last["status"] in statuses:
                return last
            if last["status"] in TERMINAL and not set(statuses) & TERMINAL:
                break
            time.sleep(self.poll_interval_s)
        raise ConformanceFailure(
            f"job {job_id} did not reach {'/'.join(sorted(statuses))}",
            f"last status {last.get('status')!r} (progress {last.get('progress')})",
        )

    def read_stream(
        self,
        job_id: str,
        after: str | None = None,
        *,
        max_events: int | None = None,
        until_comment: bool = False,
        **kw: Any,
    ) -> StreamRead:
        """Read one connection: until the server ends it, `max_events` arrive, or (with
        `until_comment`) the first comment; leaving early drops the connection."""
        out = StreamRead()
        with self.open_stream(job_id, after, **kw) as stream:
            out.status_code = stream.status_code
            out.headers = dict(stream.response.headers)
            if stream.status_code != 200:
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
