"""AVA jobs client: one method per operation, plus the waits a scenario needs.

Every response is checked against openapi/ava.yaml by the underlying `ApiClient`; the helpers
here also insist on the `{"data": ...}` envelope, so a scenario can work with the record itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ..checks import ConformanceFailure, body_of
from .http import ApiClient
from .poll import wait_for_status

TERMINAL = frozenset({"completed", "failed", "cancelled"})
JOBS = "/v1/ava/jobs"


class AvaClient:
    def __init__(self, api: ApiClient, *, poll_interval_s: float = 0.05) -> None:
        self.api = api
        self.poll_interval_s = poll_interval_s

    # -- one call per operation --------------------------------------------------------------

    def trigger(self, body: Any, **kw: Any) -> httpx.Response:
        return self.api.request("triggerJob", "POST", JOBS, json_body=body, **kw)

    def list_jobs(self, params: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return self.api.request("listJobs", "GET", JOBS, params=params, **kw)

    def get_job(self, job_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("getJob", "GET", f"{JOBS}/{job_id}", **kw)

    def get_logs(
        self, job_id: str, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.api.request("getJobLogs", "GET", f"{JOBS}/{job_id}/logs", params=params, **kw)

    def cancel(self, job_id: str, **kw: Any) -> httpx.Response:
        return self.api.request("cancelJob", "POST", f"{JOBS}/{job_id}/cancel", **kw)

    # -- scenario helpers ----------------------------------------------------------------------

    def start(self, worker_id: str, **fields: Any) -> dict[str, Any]:
        """Trigger a job; the new record."""
        record: dict[str, Any] = self.data(
            self.trigger({"worker_id": worker_id, **fields}), "trigger a job", 201
        )
        return record

    def job(self, job_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self.data(self.get_job(job_id), f"read job {job_id}")
        return record

    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        params = {f"filter[{k}]": v for k, v in filters.items() if v is not None}
        found: list[dict[str, Any]] = self.data(self.list_jobs(params), "list jobs")
        return found

    def logs(self, job_id: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.data(
            self.get_logs(job_id, params or None), f"read the logs of {job_id}"
        )
        return body

    def wait_for(
        self, job_id: str, statuses: Collection[str], timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Poll until the job reaches one of `statuses`; fail naming the last status seen."""
        return wait_for_status(
            lambda: self.job(job_id),
            statuses,
            final=TERMINAL,
            timeout_s=timeout_s,
            interval_s=self.poll_interval_s,
            what=f"job {job_id}",
        )

    @staticmethod
    def data(response: httpx.Response, what: str, status: int = 200) -> Any:
        if response.status_code != status:
            raise ConformanceFailure(
                f"could not {what}: HTTP {response.status_code}", response.text[:300]
            )
        body = body_of(response)
        if not isinstance(body, dict) or "data" not in body:
            raise ConformanceFailure(f'{what}: the body is not {{"data": ...}}', repr(body)[:300])
        return body["data"]


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, the precision the bounds and schedules are tested at."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def shift(value: str, ms: int) -> str:
    return format_ts(parse_ts(value) + timedelta(milliseconds=ms))
