"""AVA over HTTP: one handler per operationId of `openapi/ava.yaml`; parse -> model -> render.

Callers are identified by four headers (x-internal-secret, x-tenant-id, x-user-id,
x-platform-role), checked before the request's shape so an unknown caller learns nothing about
it. Success bodies are `{"data": ...}`; errors are the AVA envelope (`AvaEnvelope`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..clock import iso, parse_iso
from ..errors import AvaEnvelope, RequestInvalid
from ..model.ava import (
    DEFAULT_PRIORITY,
    AvaModel,
    Caller,
    JobStatus,
    job_record,
    log_record,
)
from ..model.engine import Engine
from ..responses import JSONResponse
from ..spec import Operation, Spec, ValidRequest
from .base import ApiApp, Handler


class AvaApp(ApiApp[Caller]):
    envelope = AvaEnvelope()

    def __init__(self, spec: Spec, engine: Engine, model: AvaModel, *, max_body_bytes: int) -> None:
        self.model = model
        super().__init__(spec, engine, max_body_bytes=max_body_bytes)

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
        return data(job_record(job), status_code=201)

    async def list_jobs(self, req: ValidRequest, who: Caller, _: Request) -> Response:
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
        return data([job_record(j) for j in jobs])

    async def get_job(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        return data(job_record(self.model.get_job(who, req.path["id"])))

    async def get_job_logs(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        job, lines = self.model.job_logs(
            who, req.path["id"], level=req.query.get("filter[level]"), limit=req.query["limit"]
        )
        return data(
            {
                "job_id": job.id,
                "job_status": job.status.value,
                "logs": [log_record(line) for line in lines],
            }
        )

    async def cancel_job(self, req: ValidRequest, who: Caller, _: Request) -> Response:
        return data(job_record(self.model.cancel(who, req.path["id"])))


def data(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"data": value}, status_code=status_code)


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
