"""AUVY over HTTP: one handler per operationId of `openapi/auvy.yaml`; parse -> model -> render.

Private routes authenticate a workspace API key; public routes a receptor's share token (`?t=` or
`share_token` in the body), with an optional user JWT that only attributes the trace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .. import jwt, sse
from ..clock import iso
from ..errors import AuvyEnvelope, RateLimited, RequestInvalid
from ..model.auvy import (
    AuvyModel,
    Intervention,
    Job,
    JobStatus,
    Principal,
    Trace,
    render_waiting_for,
)
from ..model.engine import Engine
from ..model.errors import Unauthenticated
from ..model.receptors import Receptor, Receptors, ShareToken
from ..model.stream import Entry, ReadResult
from ..model.stream_id import InvalidStreamId, StreamId
from ..responses import JSONResponse
from ..spec import Operation, Spec, ValidRequest
from ..variants.auvy import AuvyVariant
from .base import ApiApp, Handler, bearer_token

TERMINAL_EVENTS = frozenset({"complete", "error"})


@dataclass(frozen=True)
class PublicCaller:
    """Whoever holds a share link; `user_id` only when a valid user JWT came along."""

    user_id: str | None


Caller = Principal | PublicCaller


class AuvyApp(ApiApp[Caller]):
    envelope = AuvyEnvelope()

    def __init__(
        self,
        spec: Spec,
        engine: Engine,
        model: AuvyModel,
        receptors: Receptors,
        *,
        max_body_bytes: int,
        ping_interval_s: float,
        rate_limit: tuple[int, int] = (0, 60_000),
    ) -> None:
        from ..ratelimit import RateLimiter

        self.model = model
        self.receptors = receptors
        self.ping_interval_s = ping_interval_s
        self.rate_limit = rate_limit
        self.limiter = RateLimiter(engine.clock)
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
            "getReceptor": self.get_receptor,
            "createShare": self.create_share,
            "getShare": self.get_share,
            "revokeShare": self.revoke_share,
            "rotateShare": self.rotate_share,
            "listInterventions": self.list_interventions,
            "getIntervention": self.get_intervention,
            "respondIntervention": self.respond_intervention,
            "resolvePublicReceptor": self.resolve_public,
            "resolvePublicReceptorById": self.resolve_public,
            "executePublicReceptor": self.execute_public,
            "executePublicReceptorById": self.execute_public,
            "transcribePublicReceptor": self.transcribe_public,
            "getPublicTrace": self.get_public_trace,
            "streamPublicJob": self.stream_public_job,
        }

    @staticmethod
    def is_public(operation: Operation) -> bool:
        return operation.template.startswith("/v1/public/")

    def authenticate(self, request: Request, operation: Operation) -> Caller:
        if not self.is_public(operation):
            return self.model.authenticate(bearer_token(request))
        # The share token itself is checked by each handler (a POST may carry it in the body);
        # a GET without one is refused here, before validation, so anonymous callers get 401.
        if request.method == "GET" and not request.query_params.get("t"):
            raise Unauthenticated("a share token is required (?t=)")
        header = request.headers.get("authorization")
        if header is None:
            return PublicCaller(None)
        token = bearer_token(request)
        if token is None or self.model.jwt_secret is None:
            raise Unauthenticated("Authorization must be Bearer <user JWT> on public routes")
        try:
            claims = jwt.decode(token, self.model.jwt_secret, self.engine.now() / 1000)
        except jwt.InvalidToken as exc:
            if self.variant.ignore_invalid_jwt:
                # The JWT only attributes the trace: this server drops one it cannot verify.
                return PublicCaller(None)
            raise Unauthenticated(f"the user JWT is not valid: {exc}") from None
        return PublicCaller(str(claims["sub"]))

    def limit(self, request: Request, operation: Operation) -> None:
        # Per credential: the API key on private routes, the share token on public ones (a user
        # JWT there only attributes); anonymous callers share their address's budget.
        if self.is_public(operation):
            credential = request.query_params.get("t")
        else:
            credential = bearer_token(request)
        if credential is None:
            credential = f"ip:{request.client.host if request.client else '?'}"
        key = self.model.keys.get(credential)
        requests, window_ms = key.rate_limit if key and key.rate_limit else self.rate_limit
        if requests <= 0:
            return
        wait_ms = self.limiter.hit(credential, requests, window_ms)
        if wait_ms is not None:
            raise RateLimited(max(1, math.ceil(wait_ms / 1000)), requests)

    # -- starting ------------------------------------------------------------------------------

    async def create_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body
        job = self.model.start_pathway(
            who,
            body.get("pathway_id"),
            inline=body.get("pathway"),
            input=_job_input(body),
        )
        return self.accepted(job)

    async def execute_pathway(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body or {}
        job = self.model.start_pathway(who, req.path["id"], input=_job_input(body))
        return self.accepted(job)

    async def transcribe(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        job = self.model.transcribe(who, req.body["audio_base64"], req.body["mime_type"])
        return self.accepted(job)

    async def chat_trace(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body
        job = self.model.chat(
            who, req.path["traceId"], body["message"], body.get("neuron_task_options")
        )
        return self.accepted(job)

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
            self.extra(
                {
                    "jobs": [self.render(j) for j in jobs],
                    "total": total,
                    "limit": q["limit"],
                    "offset": q["offset"],
                }
            )
        )

    async def get_job_status(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return JSONResponse(self.render(self.model.get_job(who, req.path["jobId"])))

    async def stream_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return self.stream(self.model.get_job(who, req.path["jobId"]), req.query.get("after"))

    def stream(self, job: Job, raw_after: str | None) -> Response:
        """The one event-stream implementation behind the private and the public route."""
        after = parse_after(raw_after, refuse=self.variant.refuse_malformed_after)
        first = self.model.read_events(job, after)
        headers = dict(sse.HEADERS)
        if first.truncated and after is not None:
            headers["X-Stream-Truncated"] = "true"
        job_id = job.id

        def read(cursor: StreamId | None) -> ReadResult:
            current = self.model.jobs.get(job_id)
            assert current is not None
            return self.model.read_events(current, cursor)

        def finished() -> bool:
            current = self.model.jobs.get(job_id)
            return current is None or current.terminal

        body = sse.deliver(
            self.engine,
            job_id,
            read,
            after=after,
            is_terminal_entry=is_terminal_entry,
            is_finished=finished,
            ping_interval_s=self.ping_interval_s,
            first=first,
            gap=truncated_marker,
            stream="auvy",
        )
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    # -- controlling ---------------------------------------------------------------------------

    async def cancel_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return JSONResponse(self.render(self.model.cancel(who, req.path["jobId"])))

    async def resume_job(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        return JSONResponse(self.render(self.model.resume(who, req.path["jobId"])))

    async def submit_job_input(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body
        job = self.model.submit_input(who, req.path["jobId"], body["workspace_id"], body["input"])
        return JSONResponse(self.render(job))

    # -- receptors and shares (private) --------------------------------------------------------

    async def get_receptor(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        receptor = self.receptors.get(who, req.path["slug"])
        return JSONResponse(self.render_receptor(receptor))

    async def create_share(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        body = req.body or {}
        share, created = self.receptors.create_share(
            who,
            req.path["workspace"],
            req.path["slug"],
            allow_files=body.get("allow_files"),
            customization=body.get("customization"),
        )
        created_status = self.variant.share_created_status
        return JSONResponse(
            self.render_share(share), status_code=created_status if created else 200
        )

    async def get_share(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        share = self.receptors.get_share(who, req.path["workspace"], req.path["slug"])
        return JSONResponse(self.render_share(share))

    async def revoke_share(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        share = self.receptors.revoke_share(who, req.path["workspace"], req.path["slug"])
        return JSONResponse(
            {"receptor_id": share.receptor_id, "revoked": True, "revoked_at": iso(share.ended_ms)}
        )

    async def rotate_share(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        share = self.receptors.rotate_share(who, req.path["workspace"], req.path["slug"])
        return JSONResponse(self.render_share(share))

    # -- interventions -------------------------------------------------------------------------

    async def list_interventions(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        q = req.query
        found, total = self.model.list_interventions(
            who,
            job_id=q.get("job_id"),
            trace_id=q.get("trace_id"),
            status=q.get("status"),
            limit=q["limit"],
        )
        return JSONResponse(
            {"interventions": [self.render_intervention(i) for i in found], "total": total}
        )

    async def get_intervention(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        intervention = self.model.get_intervention(who, req.path["interventionId"])
        return JSONResponse(self.render_intervention(intervention))

    async def respond_intervention(self, req: ValidRequest, who: Principal, _: Request) -> Response:
        intervention = self.model.respond(who, req.path["interventionId"], req.body)
        return JSONResponse(self.render_intervention(intervention))

    # -- public (share token) ------------------------------------------------------------------

    def _receptor(self, req: ValidRequest) -> Receptor:
        body = req.body if isinstance(req.body, dict) else {}
        token = req.query.get("t") or body.get("share_token")
        return self.receptors.access(
            token,
            workspace_slug=req.path.get("workspace"),
            slug=req.path.get("slug"),
            receptor_id=req.path.get("receptor_id"),
        )

    async def resolve_public(self, req: ValidRequest, _: PublicCaller, __: Request) -> Response:
        receptor = self._receptor(req)
        return JSONResponse(
            self.extra(
                {
                    "receptor": {
                        "id": receptor.id,
                        "slug": receptor.slug,
                        "name": receptor.name,
                        "workspace": self.receptors.workspace_slug(receptor),
                    },
                    "allow_files": receptor.allow_files,
                    "customization": dict(receptor.customization),
                }
            )
        )

    async def execute_public(self, req: ValidRequest, who: PublicCaller, _: Request) -> Response:
        receptor = self._receptor(req)
        job, trace = self.receptors.execute(
            receptor,
            req.body["message"],
            stream=bool(req.body.get("stream", False)),
            user_id=who.user_id,
        )
        answer: dict[str, Any] = {"job_id": job.id, "status": "pending"}
        if self.variant.execute_names_trace:
            answer["trace_id"] = trace.id
        return JSONResponse(self.extra(answer), status_code=self.variant.start_status)

    async def transcribe_public(self, req: ValidRequest, _: PublicCaller, __: Request) -> Response:
        receptor = self._receptor(req)
        job = self.receptors.transcribe(receptor, req.body["audio_base64"], req.body["mime_type"])
        return self.accepted(job)

    async def get_public_trace(self, req: ValidRequest, _: PublicCaller, __: Request) -> Response:
        token = req.query["t"]
        receptor = self.receptors.access(
            token, workspace_slug=req.query["workspace"], slug=req.query["receptor"]
        )
        trace = self.receptors.trace(receptor, req.path["trace_id"])
        return JSONResponse(self.extra(self.render_public_trace(trace, receptor)))

    async def stream_public_job(self, req: ValidRequest, _: PublicCaller, __: Request) -> Response:
        q = req.query
        named = "workspace" in q or "receptor" in q
        receptor = self.receptors.access(
            q["t"],
            workspace_slug=q.get("workspace") if named else None,
            slug=q.get("receptor") if named else None,
        )
        job = self.receptors.job(receptor, req.path["jobId"], q.get("trace_id"))
        return self.stream(job, q.get("after"))

    # -- rendering -----------------------------------------------------------------------------

    def render_receptor(self, receptor: Receptor) -> dict[str, Any]:
        return {
            "id": receptor.id,
            "slug": receptor.slug,
            "name": receptor.name,
            "workspace": self.receptors.workspace_slug(receptor),
            "pathway_id": receptor.pathway_id,
            "allow_files": receptor.allow_files,
            "customization": dict(receptor.customization),
            "share_active": self.receptors.active_share(receptor.id) is not None,
        }

    def render_share(self, share: ShareToken) -> dict[str, Any]:
        receptor = self.receptors.receptors[share.receptor_id]
        return self.extra(
            {
                "token": share.token,
                "receptor_id": receptor.id,
                "workspace": self.receptors.workspace_slug(receptor),
                "receptor": receptor.slug,
                "allow_files": receptor.allow_files,
                "customization": dict(receptor.customization),
                "created_at": iso(share.created_ms),
            }
        )

    def render_intervention(self, intervention: Intervention) -> dict[str, Any]:
        job = self.model.jobs.get(intervention.job_id)
        waiting = render_waiting_for(intervention)
        out: dict[str, Any] = {
            "id": intervention.id,
            "job_id": intervention.job_id,
            "trace_id": job.trace_id if job else None,
            "type": waiting["type"],
            "prompt": waiting["prompt"],
            "actions": waiting["actions"],
            "status": intervention.status,
            "created_at": waiting["created_at"],
            "responded_at": iso(intervention.responded_ms),
            "response": intervention.response,
        }
        for key in ("fields", "questions"):
            if key in waiting:
                out[key] = waiting[key]
        return out

    def render_public_trace(self, trace: Trace, receptor: Receptor) -> dict[str, Any]:
        return {
            "trace_id": trace.id,
            "workspace": self.receptors.workspace_slug(receptor),
            "receptor": receptor.slug,
            "user_id": trace.user_id,
            "created_at": iso(trace.created_ms),
            "job_ids": list(trace.job_ids),
        }

    def render(self, job: Job) -> dict[str, Any]:
        intervention = self.model.waiting_for(job)
        return self.extra(
            {
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
        )

    @property
    def variant(self) -> AuvyVariant:
        return self.model.settings.variant

    def extra(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body`, with a member no document names when the variant asks for extra fields."""
        if self.variant.extra_fields:
            return {**body, "x_request_region": "variant-eu-1"}
        return body

    def accepted(self, job: Job) -> JSONResponse:
        return JSONResponse(
            self.extra({"job_id": job.id, "status": "pending"}),
            status_code=self.variant.start_status,
        )


def _job_input(body: Mapping[str, Any]) -> dict[str, Any]:
    # The document allows `input` or `data`; both reach the pathway, `input` winning on clashes.
    merged: dict[str, Any] = dict(body.get("data") or {})
    merged.update(body.get("input") or {})
    return merged


def parse_after(raw: str | None, *, refuse: bool = True) -> StreamId | None:
    if raw is None:
        return None
    try:
        return StreamId.parse(raw)
    except InvalidStreamId as exc:
        if not refuse:
            return None  # the variant reads a malformed `after` as no `after`: the whole stream
        raise RequestInvalid("query", "after", f"after: {exc}") from None


def truncated_marker(cursor: StreamId, read: ReadResult) -> dict[str, Any]:
    """The id-less entry that tells a reader entries after `cursor` were trimmed (x-decision)."""
    first = read.first_retained
    return {
        "type": "truncated",
        "requested_after": cursor.encode(),
        "first_retained": first.encode() if first is not None else None,
    }


def is_terminal_entry(entry: Entry) -> bool:
    return entry.data.get("type") in TERMINAL_EVENTS
