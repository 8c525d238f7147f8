"""Strait runs client: one method per operation, plus the waits a scenario needs.

Every response is checked against openapi/strait.yaml by the underlying `ApiClient`; the helpers
insist on the documented status, so a scenario can work with the body itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx

from ..checks import ConformanceFailure, body_of
from .http import ApiClient, EventStream

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


def new_batch() -> str:
    """A batch id no other test uses: lists filtered by it see only this test's runs."""
    return f"conf-{uuid.uuid4().hex[:16]}"


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

    def stream(self, run_id: str, chunks: bool = False) -> AbstractContextManager[EventStream]:
        if chunks:
            return self.api.stream("streamRunChunks", f"{RUNS}/{run_id}/stream/chunks")
        return self.api.stream("streamRun", f"{RUNS}/{run_id}/stream")

    # -- scenario helpers ----------------------------------------------------------------------

    def start(self, job_id: str, **fields: Any) -> dict[str, Any]:
        run: dict[str, Any] = expect(self.trigger(job_id, fields), 201, f"trigger {job_id}")
        return run

    def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = expect(self.get_run(run_id), 200, f"read run {run_id}")
        return run

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = expect(self.list_runs(params), 200, "list runs")
        return found

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
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.run(run_id)
            if last["status"] in statuses:
                return last
            if last["status"] in TERMINAL and last["status"] != "dead_letter":
                break
            time.sleep(self.poll_s)
        raise ConformanceFailure(
            f"run {run_id} did not reach {'/'.join(sorted(statuses))}",
            f"last status {last.get('status')!r}",
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
