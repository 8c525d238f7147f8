"""AUVY over HTTP: one handler per operationId of `openapi/auvy.yaml`; parse -> model -> render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .. import sse
from ..clock import iso
from ..errors import AuvyEnvelope, RequestInvalid
from ..model.auvy import AuvyModel, Job, JobStatus, Principal, render_waiting_for
from ..model.engine import Engine
from ..model.stream import Entry
from ..model.stream_id import InvalidStreamId, StreamId
from ..spec import Operation, Spec, ValidRequest
from .base import ApiApp, Handler, bearer_token

TERMINAL_EVENTS = frozenset({"complete", "error"})


class AuvyApp(ApiApp[Principal]):
    envelope = AuvyEnvelope()

    def __init__(
        self,
        spec: Spec,
        engine: Engine,
        model: AuvyModel,
        *,
        max_body_bytes: int,
        ping_interval_s: float,
    ) -> None:
        self.model = model
        self.ping_interval_s = ping_interval_s
        super().__init__(spec, engine, max_body_bytes=max_body_bytes)

    def build_handlers(self) -> Mapping[str, Handler]:
        return {
            "createJob": self.create_job,
            "executePathway": self.execute_pathway,
            "listJobs": self.list_jobs,
            "getJobStatus": self.get_job_status,
            "streamJob": self.stream_job,
            "cancelJob": self.cancel_job,
            "resumeJob": self.resume_job,
            "submitJobInput": self.submit_job_input,
            "transcribe": self.transcribe,
            "chatTrace": self.chat_trace,
        }

    def authenticate(self, request: Request, operation: Operation) -> Principal:
        return self.model.authenticate(bearer_token(request))

    # -- starting ------------------------------------------------------------------------------

    async def create_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body
        job = self.model.start_pathway(
            who,
            body.get("pathway_id"),
            inline=body.get("pathway"),
            input=_job_input(body),
        )
        return accepted(job)

    async def execute_pathway(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body or {}
        job = self.model.start_pathway(who, req.path["id"], input=_job_input(body))
        return accepted(job)

    async def transcribe(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        job = self.model.transcribe(who, req.body["audio_base64"], req.body["mime_type"])
        return accepted(job)

    async def chat_trace(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body
        job = self.model.chat(
            who, req.path["traceId"], body["message"], body.get("neuron_task_options")
        )
        return accepted(job)

    # -- reading -------------------------------------------------------------------------------

    async def list_jobs(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        q = req.query
        status = q.get("status")
        jobs, total = self.model.list_jobs(
            who,
            pathway_id=q.get("pathway_id"),
            receptor_id=q.get("receptor_id"),
            status=JobStatus(status) if status else None,
            limit=q["limit"],
            offset=q["offset"],
        )
        return JSONResponse(
            {
                "jobs": [self.render(j) for j in jobs],
                "total": total,
                "limit": q["limit"],
                "offset": q["offset"],
            }
        )

    async def get_job_status(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return JSONResponse(self.render(self.model.get_job(who, req.path["jobId"])))

    async def stream_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        job = self.model.get_job(who, req.path["jobId"])
        after = parse_after(req.query.get("after"))
        first = self.model.read_events(job, after)
        headers = dict(sse.HEADERS)
        prelude = b""
        if first.truncated and after is not None:
            headers["X-Stream-Truncated"] = "true"
            marker = {
                "type": "truncated",
                "requested_after": after.encode(),
                "first_retained": first.first_retained.encode() if first.first_retained else None,
            }
            prelude = sse.frame(marker)
        job_id = job.id

        def read(cursor: StreamId | None) -> Any:
            current = self.model.jobs.get(job_id)
            assert current is not None
            return self.model.read_events(current, cursor)

        def finished() -> bool:
            current = self.model.jobs.get(job_id)
            return current is None or current.terminal

        async def body() -> Any:
            if prelude:
                yield prelude
            async for chunk in sse.deliver(
                self.engine,
                job_id,
                read,
                after=after,
                is_terminal_entry=is_terminal_entry,
                is_finished=finished,
                ping_interval_s=self.ping_interval_s,
                first=first,
            ):
                yield chunk

        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    # -- controlling ---------------------------------------------------------------------------

    async def cancel_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return JSONResponse(self.render(self.model.cancel(who, req.path["jobId"])))

    async def resume_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return JSONResponse(self.render(self.model.resume(who, req.path["jobId"])))

    async def submit_job_input(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body
        job = self.model.submit_input(who, req.path["jobId"], body["workspace_id"], body["input"])
        return JSONResponse(self.render(job))

    # -- rendering -----------------------------------------------------------------------------

    def render(self, job: Job) -> dict[str, Any]:
        intervention = self.model.waiting_for(job)
        return {
            "job_id": job.id,
            "status": job.status.value,
            "progress": job.progress,
            "current_step": job.current_step,
            "failedReason": job.failed_reason,
            "result": job.result if job.status is JobStatus.COMPLETED else None,
            "waitingFor": render_waiting_for(intervention) if intervention else None,
            "created_at": iso(job.created_ms),
            "processed_at": iso(job.processed_ms),
            "finished_at": iso(job.finished_ms),
            "pathway_id": job.pathway_id,
            "receptor_id": job.receptor_id,
            "kind": job.kind,
        }


def accepted(job: Job) -> JSONResponse:
    return JSONResponse({"job_id": job.id, "status": "pending"})


def _job_input(body: Mapping[str, Any]) -> dict[str, Any]:
    # The document allows `input` or `data`; both reach the pathway, `input` winning on clashes.
    merged: dict[str, Any] = dict(body.get("data") or {})
    merged.update(body.get("input") or {})
    return merged


def parse_after(raw: str | None) -> StreamId | None:
    if raw is None:
        return None
    try:
        return StreamId.parse(raw)
    except InvalidStreamId as exc:
        raise RequestInvalid("query", "after", f"after: {exc}") from None


def is_terminal_entry(entry: Entry) -> bool:
    return entry.data.get("type") in TERMINAL_EVENTS
