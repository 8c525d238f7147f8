"""AVA jobs client: one method per operation, plus the waits a scenario needs.

Every response is checked against openapi/ava.yaml by the underlying `ApiClient`; the helpers
here also insist on the `{"data": ...}` envelope, so a scenario can work with the record itself.

Where the documents leave an answer open, the helpers accept each allowed one: a trigger may be
201 or 202 ("triggering one returns immediately with a job record"), a validation error 400 or
422 (FACTS.md), and a list may be paginated (no pagination is documented, so `jobs` follows
whatever next-page pointer a response carries rather than concluding from one page).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ..checks import ConformanceFailure, ava_error_envelope, body_of
from .http import ApiClient
from .poll import wait_for_status

TERMINAL = frozenset({"completed", "failed", "cancelled"})
JOBS = "/v1/ava/jobs"
# "triggering one returns immediately with a job record": Created and Accepted both say that.
TRIGGER_STATUSES = (201, 202)
# The fields of the document's example record: what "the job record" promises. A record may carry
# more; comparisons of two records compare these.
RECORD_FIELDS = (
    "id",
    "worker_id",
    "tenant_id",
    "status",
    "trigger",
    "priority",
    "input",
    "triggered_by",
    "created_at",
    "started_at",
    "completed_at",
    "duration_ms",
    "output",
    "error",
)
# The document shows no answer to a cancel: the record (200, or 202 while SIGTERM is handled) or
# nothing (204) all report success.
CANCEL_STATUSES = (200, 202, 204)
# FACTS.md: "validation_error 400/422 (field details in `error.fields`)".
VALIDATION_STATUSES = (400, 422)
# Far more pages than any run makes jobs for: a server whose cursor never ends fails, not hangs.
MAX_PAGES = 2000
_CURSOR_KEYS = ("next_cursor", "cursor", "next_page_token", "next_token")
_FRACTION = re.compile(r"T[0-9:]+(?:[.,]([0-9]+))?")


def invalid(response: httpx.Response | None, field: str | None = None) -> dict[str, Any]:
    """A validation error: 400 or 422 (FACTS.md), code validation_error, naming `field`."""
    status = response.status_code if response is not None else 0
    expected = status if status in VALIDATION_STATUSES else VALIDATION_STATUSES[0]
    if status not in VALIDATION_STATUSES:
        raise ConformanceFailure(
            f"expected a validation error (HTTP 400 or 422), got HTTP {status}",
            response.text[:300] if response is not None else "no response",
        )
    return ava_error_envelope(response, expected, "validation_error", field)


class AvaClient:
    def __init__(
        self, api: ApiClient, *, poll_interval_s: float = 0.05, cursor_param: str = "cursor"
    ) -> None:
        self.api = api
        self.poll_interval_s = poll_interval_s
        # The query parameter that sends a list's next_cursor back (ava.list.cursor_param).
        self.cursor_param = cursor_param

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
        response = self.trigger({"worker_id": worker_id, **fields})
        record: dict[str, Any] = self.data(response, "trigger a job", TRIGGER_STATUSES)
        return record

    def job(self, job_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self.data(self.get_job(job_id), f"read job {job_id}")
        return record

    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """Every job matching the filters, across every page the target hands out."""
        params = {f"filter[{k}]": v for k, v in filters.items() if v is not None}
        return self.all_pages(params)

    def all_pages(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        response = self.list_jobs(params)
        seen_pointers: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self.data(response, "list jobs")
            if not isinstance(page, list):
                raise ConformanceFailure("list jobs: data is not an array", repr(page)[:300])
            found.extend(page)
            pointer = _next_page(response, self.cursor_param)
            if pointer is None or not page:
                return found
            key = repr(pointer)
            if key in seen_pointers:
                raise ConformanceFailure("list jobs: the next-page pointer repeats", key)
            seen_pointers.add(key)
            kind, value = pointer
            if kind == "cursor":
                response = self.list_jobs({**params, self.cursor_param: value})
            else:
                path, query = self._relative(value)
                response = self.api.request("listJobs", "GET", path, params=query)
        raise ConformanceFailure(f"list jobs: still more pages after {MAX_PAGES}", repr(params))

    def _relative(self, url: str) -> tuple[str, list[tuple[str, str]]]:
        """A next-page link as a path below the API's base URL, and its query."""
        parts = urlsplit(url)
        base_path = urlsplit(self.api.base_url).path.rstrip("/")
        path = parts.path
        if base_path and path.startswith(base_path + "/"):
            path = path[len(base_path) :]
        return path, parse_qsl(parts.query, keep_blank_values=True)

    def logs(self, job_id: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.data(
            self.get_logs(job_id, params or None), f"read the logs of {job_id}"
        )
        return body

    def stop(self, job_id: str, what: str | None = None) -> dict[str, Any] | None:
        """Cancel a job that must accept it; its record when the answer carries one."""
        response = self.cancel(job_id)
        doing = what or f"cancel job {job_id}"
        if response.status_code == 204:
            return None
        record = self.data(response, doing, CANCEL_STATUSES)
        if not isinstance(record, dict) or record.get("id") != job_id:
            raise ConformanceFailure(f"{doing}: the answer is not that job's record", repr(record))
        return record

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
    def data(response: httpx.Response, what: str, status: int | Collection[int] = 200) -> Any:
        allowed = {status} if isinstance(status, int) else set(status)
        if response.status_code not in allowed:
            raise ConformanceFailure(
                f"could not {what}: HTTP {response.status_code}", response.text[:300]
            )
        body = body_of(response)
        if not isinstance(body, dict) or "data" not in body:
            raise ConformanceFailure(f'{what}: the body is not {{"data": ...}}', repr(body)[:300])
        return body["data"]


def promised(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's documented fields (extra fields a target adds may change freely)."""
    return {name: record.get(name) for name in RECORD_FIELDS}


def _next_page(response: httpx.Response, cursor_param: str) -> tuple[str, str] | None:
    """Whatever the response says about a next page: a cursor to send back, or a link."""
    link = response.links.get("next", {}).get("url")
    if link:
        return "link", str(link)
    body = body_of(response)
    if not isinstance(body, dict):
        return None
    places = [body] + [
        body[k] for k in ("meta", "pagination", "page") if isinstance(body.get(k), dict)
    ]
    for place in places:
        if place.get("has_more") is False:
            return None
        for key in _CURSOR_KEYS:
            value = place.get(key)
            if isinstance(value, str) and value:
                return "cursor", value
        links = place.get("links")
        nxt = links.get("next") if isinstance(links, dict) else place.get("next")
        if isinstance(nxt, str) and nxt:
            return "link", nxt
    return None


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def precision_ms(*values: str) -> int:
    """The coarsest resolution the rendered timestamps show: 1 ms for .123, 1000 ms for none.

    A server may render coarser than it measures, so comparisons between a rendered timestamp
    and a value computed from finer clocks must allow this much either way."""
    coarsest = 1
    for value in values:
        m = _FRACTION.search(value)
        digits = len(m.group(1)) if m and m.group(1) else 0
        coarsest = max(coarsest, 10 ** max(0, 3 - digits))
    return coarsest


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, the precision the bounds and schedules are tested at."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def shift(value: str, ms: int) -> str:
    return format_ts(parse_ts(value) + timedelta(milliseconds=ms))
