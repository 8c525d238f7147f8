"""Strait runs client: one method per operation, plus the waits a scenario needs.

Every response is checked against openapi/strait.yaml by the underlying `ApiClient`; the helpers
insist on the documented status, so a scenario can work with the body itself.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ..checks import ConformanceFailure, body_of
from .http import ApiClient, EventStream
from .poll import wait_for_status
from .sse import SseComment, SseEvent

TERMINAL = frozenset(
    {
        "completed",
        "failed",
        "timed_out",
        "crashed",
        "system_failed",
        "canceled",
        "expired",
        "dead_letter",
    }
)
RUNS = "/v1/runs"
STATUSES = (
    "delayed",
    "queued",
    "dequeued",
    "executing",
    "waiting",
    "completed",
    "failed",
    "timed_out",
    "crashed",
    "system_failed",
    "canceled",
    "expired",
    "dead_letter",
)
# FACTS.md's transition table, as a client sees statuses.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "delayed": frozenset({"queued", "canceled", "expired"}),
    "queued": frozenset({"dequeued", "executing", "canceled", "expired"}),
    "dequeued": frozenset({"executing", "queued", "canceled", "system_failed"}),
    "executing": frozenset(
        {
            "completed",
            "failed",
            "timed_out",
            "crashed",
            "canceled",
            "waiting",
            "queued",
            "system_failed",
            "dead_letter",
        }
    ),
    "waiting": frozenset({"executing", "completed", "failed", "canceled", "timed_out"}),
    "dead_letter": frozenset({"queued"}),
}
# What a paused run reports: the document's enum has no `paused`, so a pause shows as `waiting`;
# the live system reports `paused` (FACTS.md), the spec's recorded deviation.
PAUSED = frozenset({"waiting", "paused"})
# FACTS.md: "Pause only from executing; resume only from paused -> queued; restart from executing or
# paused -> queued", and a live run can be canceled; for a target that reports `paused`.
PAUSED_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "executing": frozenset({"paused"}),
    "paused": frozenset({"queued", "canceled"}),
}
# The run record's fields as the document lists them. Comparisons of a run before and after
# something look at these only: a target may add fields of its own, and they may change.
RUN_FIELDS = (
    "id",
    "job_id",
    "project_id",
    "status",
    "attempt",
    "payload",
    "result",
    "metadata",
    "error",
    "triggered_by",
    "scheduled_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "next_retry_at",
    "expires_at",
    "parent_run_id",
    "priority",
    "idempotency_key",
    "job_version",
    "workflow_step_run_id",
    "max_attempts_override",
    "timeout_secs_override",
    "retry_backoff",
    "retry_initial_delay_secs",
    "retry_max_delay_secs",
    "execution_trace",
    "debug_mode",
    "continuation_of",
    "lineage_depth",
    "tags",
    "job_version_id",
    "created_by",
    "batch_id",
    "concurrency_key",
    "created_at",
)
HOLD_S = 3600  # how far ahead a held run is scheduled: it stays delayed for the whole test


def documented(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's documented fields (absent ones as None): what `same_run` compares."""
    return {name: run.get(name) for name in RUN_FIELDS}


def same_run(after: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    return documented(after) == documented(before)


def items_of(body: Any, what: str = "list") -> list[dict[str, Any]]:
    """A list of runs: the document's plain array, or the live system's `{data, next_cursor,
    has_more}` wrapper (FACTS.md; the spec's recorded deviation)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        data: list[dict[str, Any]] = body["data"]
        return data
    raise ConformanceFailure(
        f"the {what} is neither an array nor a {{data: [...]}} page", repr(body)[:300]
    )


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The Strait error envelope `{"error": {code, message, details?}, "request_id"?}` (FACTS.md)
    with any code: for answers whose code no document gives."""
    if response.status_code != status:
        raise ConformanceFailure(
            f"expected HTTP {status}, got {response.status_code}", response.text[:300]
        )
    body = body_of(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str) or not error["code"]:
        raise ConformanceFailure(
            "error body is not the Strait envelope {error: {code, message}}", repr(body)[:300]
        )
    if not isinstance(error.get("message"), str) or not error["message"]:
        raise ConformanceFailure("error.message is missing or empty", repr(body)[:300])
    return error


def refused(response: httpx.Response) -> dict[str, Any]:
    """A malformed or out-of-range value: FACTS.md's table has both bad_request 400 and
    validation_failed 422, and no document says which such a value gets."""
    if response.status_code not in (400, 422):
        raise ConformanceFailure(
            f"expected HTTP 400 or 422, got {response.status_code}", response.text[:300]
        )
    error = error_of(response, response.status_code)
    expected = "bad_request" if response.status_code == 400 else "validation_failed"
    if error["code"] != expected:
        raise ConformanceFailure(
            f"a {response.status_code} carries code {error['code']!r}, not {expected}",
            repr(error)[:300],
        )
    return error


def new_batch() -> str:
    """A batch id no other test uses: lists filtered by it see only this test's runs."""
    return f"conf-{uuid.uuid4().hex[:16]}"


def nonce() -> str:
    """A payload value no other run has, to find a run's replays by payload_contains."""
    return uuid.uuid4().hex


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ts(value: object) -> datetime:
    """An RFC 3339 date-time; anything else (a missing field's None too) fails naming it."""
    if not isinstance(value, str):
        raise ConformanceFailure("expected an RFC 3339 date-time", repr(value)[:300])
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConformanceFailure("not an RFC 3339 date-time", value[:300]) from None


def from_now(seconds: float) -> str:
    return format_ts(datetime.now(UTC) + timedelta(seconds=seconds))


def shift(value: str, ms: int) -> str:
    return format_ts(parse_ts(value) + timedelta(milliseconds=ms))


@dataclass
class StreamRead:
    """What one connection to a run's stream delivered."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False

    @property
    def changes(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == "status_change"]

    @property
    def path(self) -> list[str]:
        """Every status the changes went through, the first `from` included."""
        changes = self.changes
        return [changes[0]["from"], *(c["to"] for c in changes)] if changes else []


class StraitClient:
    def __init__(
        self, api: ApiClient, project_id: str, *, timeout_s: float = 30.0, poll_s: float = 0.03
    ) -> None:
        self.api = api
        self.project_id = project_id
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    # -- one call per operation --------------------------------------------------------------

    def trigger(
        self, job_id: str, body: Any = None, *, idempotency_key: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        return self.api.request(
            "triggerJob",
            "POST",
            f"/v1/jobs/{job_id}/trigger",
            json_body={} if body is None else body,
            headers=headers,
            **kw,
        )

    def list_runs(self, params: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        query = {"project_id": self.project_id, **(params or {})}
        return self.api.request("listRuns", "GET", RUNS, params=query, **kw)

    def list_dlq(self, project_id: str | None = None, **kw: Any) -> httpx.Response:
        query = {"project_id": project_id or self.project_id}
        return self.api.request("listDeadLetterRuns", "GET", f"{RUNS}/dlq", params=query, **kw)

    def bulk_cancel(self, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request(
            "bulkCancelRuns", "POST", f"{RUNS}/bulk-cancel", json_body=body, **kw
        )

    def bulk_cancel_all(
        self, body: Any, project_id: str | None = None, **kw: Any
    ) -> httpx.Response:
        return self.api.request(
            "bulkCancelAllRuns",
            "POST",
            f"{RUNS}/bulk-cancel-all",
            params={"project_id": project_id or self.project_id},
            json_body=body,
            **kw,
        )

    def bulk_replay(self, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request(
            "bulkReplayRuns", "POST", f"{RUNS}/bulk-replay", json_body=body, **kw
        )

    def bulk_dlq_replay(self, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request(
            "bulkReplayDeadLetterRuns", "POST", f"{RUNS}/bulk-dlq-replay", json_body=body, **kw
        )

    def get_run(self, run_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("getRun", "GET", f"{RUNS}/{run_id}", **kw)

    def cancel(self, run_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("cancelRun", "DELETE", f"{RUNS}/{run_id}", **kw)

    def replay(self, run_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("replayRun", "POST", f"{RUNS}/{run_id}/replay", **kw)

    def dlq_replay(self, run_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("replayDeadLetterRun", "POST", f"{RUNS}/{run_id}/dlq-replay", **kw)

    def sub(self, operation_id: str, run_id: str, suffix: str, **kw: Any) -> httpx.Response:
        """GET one of the run's sub-resources (children, events, checkpoints, ...)."""
        return self.api.request(operation_id, "GET", f"{RUNS}/{run_id}/{suffix}", **kw)

    def set_debug(self, run_id: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.api.request(
            "setRunDebugMode", "POST", f"{RUNS}/{run_id}/debug", json_body=body, **kw
        )

    def reset_key(self, run_id: str, **kw: Any) -> httpx.Response:
        return self.api.request(
            "resetRunIdempotencyKey", "DELETE", f"{RUNS}/{run_id}/idempotency-key", **kw
        )

    def reschedule(self, run_id: str, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request(
            "rescheduleRun", "POST", f"{RUNS}/{run_id}/reschedule", json_body=body, **kw
        )

    def action(self, name: str, run_id: str, body: Any = None, **kw: Any) -> httpx.Response:
        """pause, resume or restart."""
        op = {"pause": "pauseRun", "resume": "resumeRun", "restart": "restartRun"}[name]
        return self.api.request(op, "POST", f"{RUNS}/{run_id}/{name}", json_body=body, **kw)

    def stream(
        self, run_id: str, chunks: bool = False, read_timeout_s: float = 15.0
    ) -> AbstractContextManager[EventStream]:
        if chunks:
            return self.api.stream(
                "streamRunChunks", f"{RUNS}/{run_id}/stream/chunks", read_timeout_s=read_timeout_s
            )
        return self.api.stream(
            "streamRun", f"{RUNS}/{run_id}/stream", read_timeout_s=read_timeout_s
        )

    # -- scenario helpers ----------------------------------------------------------------------

    def start(
        self, job_id: str, *, idempotency_key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        response = self.trigger(job_id, fields, idempotency_key=idempotency_key)
        run: dict[str, Any] = expect(response, 201, f"trigger {job_id}")
        return run

    def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = expect(self.get_run(run_id), 200, f"read run {run_id}")
        return run

    def held(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """A run that stays delayed until `release`: nothing happens to it meanwhile, so a test
        can connect to its stream, or check that a refused action left it as it was."""
        return self.start(job_id, scheduled_at=from_now(HOLD_S), **fields)

    def release(self, run_id: str) -> dict[str, Any]:
        """Reschedule a held run to now, which queues it (FACTS.md)."""
        run: dict[str, Any] = expect(
            self.reschedule(run_id, {"scheduled_at": from_now(0)}), 200, "reschedule to now"
        )
        return run

    def finish(self, job_id: str, status: str, **fields: Any) -> dict[str, Any]:
        """Trigger `job_id` and wait until the run is terminal, which must be `status`."""
        run_id = self.start(job_id, **fields)["id"]
        final = self.wait_for(run_id, TERMINAL)
        if final["status"] != status:
            raise ConformanceFailure(
                f"a run of {job_id} ended {final['status']}, expected {status}",
                f"error {final.get('error')!r}",
            )
        return final

    def executing(self, job_id: str, **fields: Any) -> dict[str, Any]:
        return self.wait_for(self.start(job_id, **fields)["id"], {"executing"})

    def read(
        self,
        run_id: str,
        *,
        chunks: bool = False,
        release: bool = False,
        until_comment: bool = False,
        read_timeout_s: float = 15.0,
    ) -> StreamRead:
        """Read the run's stream until the server ends it (or, with `until_comment`, until the
        first comment); with `release`, the held run is released once the stream is open, so
        the stream sees everything that happens to it. A silence longer than `read_timeout_s`
        ends the read with `ended` false."""
        read = StreamRead()
        with self.stream(run_id, chunks=chunks, read_timeout_s=read_timeout_s) as stream:
            if stream.status_code != 200:
                raise ConformanceFailure(
                    f"stream of run {run_id} answered {stream.status_code}",
                    stream.response.text[:300],
                )
            if release:
                self.release(run_id)
            try:
                for item in stream:
                    if isinstance(item, SseEvent):
                        frame = json.loads(item.data)
                        if not isinstance(frame, dict):
                            raise ConformanceFailure(
                                "a stream frame is not a JSON object", item.data[:300]
                            )
                        read.frames.append(frame)
                    elif isinstance(item, SseComment):
                        read.comments.append(item.text)
                        if until_comment:
                            return read
            except httpx.ReadTimeout:
                return read
            read.ended = stream.ended
        return read

    def replays_of(self, marker: str) -> list[dict[str, Any]]:
        """Every run whose payload carries `marker` (see `nonce`): a run and its replays."""
        return self.runs(payload_contains=json.dumps({"nonce": marker}), limit=100)

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        return items_of(expect(self.list_runs(params), 200, "list runs"))

    def dlq(self, project_id: str | None = None) -> list[dict[str, Any]]:
        return items_of(expect(self.list_dlq(project_id), 200, "list the DLQ"), "DLQ list")

    def pages(self, limit: int, **params: Any) -> Iterator[list[dict[str, Any]]]:
        """Every page of a listing, following created_at cursors until a short page."""
        cursor: str | None = None
        for _ in range(1000):
            query = {**params, "limit": limit}
            if cursor is not None:
                query["cursor"] = cursor
            page = self.runs(**query)
            yield page
            if len(page) < limit:
                return
            cursor = page[-1]["created_at"]

    def wait_for(
        self, run_id: str, statuses: Collection[str], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Poll until the run reaches one of `statuses`; fail naming the last status seen."""
        return wait_for_status(
            lambda: self.run(run_id),
            statuses,
            final=TERMINAL - {"dead_letter"},  # a dead-lettered run may still be replayed
            timeout_s=timeout_s or self.timeout_s,
            interval_s=self.poll_s,
            what=f"run {run_id}",
        )

    def wait_until(
        self, run_id: str, check: Any, what: str, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Poll until `check(run)` holds."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.run(run_id)
            if check(last):
                return last
            time.sleep(self.poll_s)
        raise ConformanceFailure(f"run {run_id}: {what} never happened", repr(last)[:300])


def expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise ConformanceFailure(
            f"could not {what}: HTTP {response.status_code} (expected {status})",
            response.text[:300],
        )
    return body_of(response)
