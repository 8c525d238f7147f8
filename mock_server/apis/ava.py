"""AVA over HTTP: one handler per operationId of `openapi/ava.yaml`; parse -> model -> render.

Callers are identified by four headers (x-internal-secret, x-tenant-id, x-user-id,
x-platform-role), checked before the request's shape so an unknown caller learns nothing about
it. Success bodies are `{"data": ...}`; errors are the AVA envelope (`AvaEnvelope`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..clock import iso, parse_iso
from ..errors import AvaEnvelope, RequestInvalid
from ..model.ava import (
    DEFAULT_PRIORITY,
    MAX_LOG_LIMIT,
    AvaModel,
    Caller,
    Job,
    JobStatus,
    job_record,
    log_record,
)
from ..model.engine import Engine
from ..responses import JSONResponse
from ..spec import Operation, Spec, ValidRequest
from .base import ApiApp, Handler

_DATE_ONLY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_BOUNDS = ("filter[created_after]", "filter[created_before]")
# Optional trigger fields an explicit null may stand for "omitted" (variant null_as_omitted).
_OPTIONAL = ("input", "trigger", "priority", "scheduled_at")


class Ava422Envelope(AvaEnvelope):
    """FACTS.md: "validation_error 400/422": the variant answering 422."""

    codes: ClassVar[Mapping[str, tuple[int, str]]] = {
        **AvaEnvelope.codes,
        "invalid": (422, "validation_error"),
    }


class AvaApp(ApiApp[Caller]):
    envelope = AvaEnvelope()

    def __init__(self, spec: Spec, engine: Engine, model: AvaModel, *, max_body_bytes: int) -> None:
        self.model = model
        self.variant = model.settings.variant
        if self.variant.validation_status == 422:
            self.envelope = Ava422Envelope()
        self._reinterprets = (
            self.variant.date_only_bounds
            or self.variant.log_limit_over_max == "cap"
            or self.variant.null_as_omitted
        )
        super().__init__(spec, engine, max_body_bytes=max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The reference reads requests strictly; a variant first reads them as the other server
        would (a date-only bound as midnight UTC, limit above 500 as 500, null as omitted), then
        hands them to the same validated pipeline."""
        if scope["type"] == "http" and self._reinterprets:
            scope, receive = await self._reinterpret(scope, receive)
        await super().__call__(scope, receive, send)

    async def _reinterpret(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
        path = str(scope.get("path", "")).rstrip("/")
        method = scope.get("method")
        if method == "GET" and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            changed = [self._query_value(path, name, value) for name, value in pairs]
            if changed != pairs:
                scope = {**scope, "query_string": urlencode(changed).encode("latin-1")}
        if method == "POST" and path.endswith("/v1/ava/jobs") and self.variant.null_as_omitted:
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return scope, _replay(message)
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            raw = b"".join(chunks)
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                # Left as sent: the validated pipeline answers it with the API's own error.
                body = None
            if isinstance(body, dict) and any(body.get(k, 0) is None for k in _OPTIONAL):
                raw = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
            return scope, _replay({"type": "http.request", "body": raw, "more_body": False})
        return scope, receive

    def _query_value(self, path: str, name: str, value: str) -> tuple[str, str]:
        variant = self.variant
        if (
            variant.date_only_bounds
            and path.endswith("/v1/ava/jobs")
            and name in _BOUNDS
            and _DATE_ONLY.match(value)
        ):
            return name, value + "T00:00:00Z"
        if (
            variant.log_limit_over_max == "cap"
            and path.endswith("/logs")
            and name == "limit"
            and value.isdigit()
            and int(value) > MAX_LOG_LIMIT
        ):
            return name, str(MAX_LOG_LIMIT)
        return name, value

    def build_handlers(self) -> Mapping[str, Handler]:
        return {
            "triggerJob": self.trigger_job,
            "listJobs": self.list_jobs,
            "getJob": self.get_job,
            "getJobLogs": self.get_job_logs,
            "cancelJob": self.cancel_job,
        }

    def authenticate(self, request: Request, operation: Operation) -> Caller:
        headers = request.headers
        return self.model.authenticate(
            headers.get("x-internal-secret"),
            headers.get("x-tenant-id"),
            headers.get("x-user-id"),
            headers.get("x-platform-role"),
        )

    async def trigger_job(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        body = req.body
        job_input = body.get("input") or {}
        _require_encodable(job_input, "input")
        scheduled = body.get("scheduled_at")
        job = self.model.trigger(
            who,
            body["worker_id"],
            input=job_input,
            trigger=body.get("trigger", "manual"),
            # The schema admits 5.0 as the integer 5 (JSON Schema counts integral floats).
            priority=int(body.get("priority", DEFAULT_PRIORITY)),
            scheduled_ms=parse_time(scheduled, "body", "scheduled_at") if scheduled else None,
        )
        return self.data(job_record(job, self.variant), status_code=self.variant.trigger_status)

    async def list_jobs(self, req: ValidRequest, who: Caller, request: Request) -> Response:
        q = req.query
        after, before = q.get("filter[created_after]"), q.get("filter[created_before]")
        status = q.get("filter[status]")
        jobs = self.model.list_jobs(
            who,
            worker_id=q.get("filter[worker_id]"),
            status=JobStatus(status) if status else None,
            trigger=q.get("filter[trigger]"),
            created_after_ms=parse_time(after, "query", "filter[created_after]") if after else None,
            created_before_ms=(
                parse_time(before, "query", "filter[created_before]") if before else None
            ),
        )
        size = self.variant.list_page_size
        if not size:
            return self.data([job_record(j, self.variant) for j in jobs])
        cursor = request.query_params.get("cursor")
        if cursor is not None:
            jobs = _after_cursor(jobs, cursor, newest_first=self.variant.list_order == "newest")
        page, more = jobs[:size], len(jobs) > size
        body: dict[str, Any] = {
            "data": [job_record(j, self.variant) for j in page],
            "next_cursor": _cursor_of(page[-1]) if more else None,
            "has_more": more,
        }
        if self.variant.extra_fields:
            body["meta"] = {"api_version": "2025-06-01"}
        return JSONResponse(body)

    async def get_job(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        return self.data(job_record(self.model.get_job(who, req.path["id"]), self.variant))

    async def get_job_logs(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        job, lines = self.model.job_logs(
            who, req.path["id"], level=req.query.get("filter[level]"), limit=req.query["limit"]
        )
        return self.data(
            {
                "job_id": job.id,
                "job_status": job.status.value,
                "logs": [log_record(line) for line in lines],
            }
        )

    async def cancel_job(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        job = self.model.cancel(who, req.path["id"])
        if self.variant.cancel_status == 204:
            return Response(status_code=204)
        return self.data(job_record(job, self.variant))

    def data(self, value: Any, status_code: int = 200) -> JSONResponse:
        body: dict[str, Any] = {"data": value}
        if self.variant.extra_fields:
            body["meta"] = {"api_version": "2025-06-01"}
        return JSONResponse(body, status_code=status_code)


def _replay(message: Message) -> Receive:
    """A receive that hands out `message` once, then reports the client gone."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return message

    return receive


def _cursor_of(job: Job) -> str:
    return f"{job.created_ms}.{job.seq}"


def _after_cursor(jobs: list[Job], cursor: str, *, newest_first: bool) -> list[Job]:
    """The jobs after the cursor's (a position, not an offset: jobs created meanwhile do not
    shift the pages)."""
    created, _, seq = cursor.partition(".")
    if not (created.isdigit() and seq.isdigit()):
        raise RequestInvalid("query", "cursor", f"cursor is not one this server gave: {cursor!r}")
    key = (int(created), int(seq))
    if newest_first:
        return [j for j in jobs if (j.created_ms, j.seq) < key]
    return [j for j in jobs if (j.created_ms, j.seq) > key]


def parse_time(raw: str, location: str, name: str) -> int:
    """Milliseconds for a date-time the spec's pattern already admitted; a date that does not
    exist (month 13) or cannot be rendered back is still a validation error, never a 500."""
    try:
        ms = parse_iso(raw)
        iso(ms)
    except (ValueError, OverflowError, OSError):
        raise RequestInvalid(location, name, f"{name} is not a valid date-time: {raw!r}") from None
    return ms


def _require_encodable(value: Any, name: str) -> None:
    # JSON text may escape a lone surrogate (\ud800), which no UTF-8 response can carry back.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        message = f"{name} contains text that is not valid Unicode"
        raise RequestInvalid("body", name, message) from None
