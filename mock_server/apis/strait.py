"""Strait over HTTP: one handler per operationId of `openapi/strait.yaml`; parse -> model -> render.

Callers present `Authorization: Bearer strait_<64 hex>`; the key's project scopes everything.
Errors are the Strait envelope (`StraitEnvelope`), whose 422 and 410 come from the model's
`Unprocessable` and `Gone`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .. import sse
from ..clock import iso
from ..errors import RequestInvalid, StraitEnvelope
from ..model.engine import Engine
from ..model.errors import Gone, Unprocessable
from ..model.strait import (
    MAX_LIMIT,
    TERMINAL,
    ApiKey,
    Run,
    StraitModel,
    TriggerOptions,
    bulk_record,
    chunks_key,
    run_record,
)
from ..model.stream import Entry, ReadResult
from ..model.stream_id import StreamId
from ..responses import JSONResponse
from ..spec import Operation, Spec, ValidRequest
from ..variants.strait import StraitVariant
from .ava import _require_encodable, parse_time
from .base import ApiApp, Handler, bearer_token

KEEPALIVE = b": keepalive\n\n"


class BodyValidation422(StraitEnvelope):
    """The `body_validation_422` variant: a body value the schema refuses is 422
    validation_failed; malformed JSON (no field to blame) stays 400."""

    def kind_of(self, exc: Exception) -> str:
        if isinstance(exc, RequestInvalid) and exc.location == "body" and exc.field:
            return "unprocessable"
        return super().kind_of(exc)


class StraitApp(ApiApp[ApiKey]):
    envelope = StraitEnvelope()

    def __init__(
        self,
        spec: Spec,
        engine: Engine,
        model: StraitModel,
        *,
        max_body_bytes: int,
        ping_interval_s: float = 15.0,
    ) -> None:
        self.model = model
        self.ping_interval_s = ping_interval_s
        if model.settings.variant.body_validation_422:
            self.envelope = BodyValidation422()
        super().__init__(spec, engine, max_body_bytes=max_body_bytes)

    def build_handlers(self) -> Mapping[str, Handler]:
        return {
            "triggerJob": self.trigger_job,
            "listRuns": self.list_runs,
            "listDeadLetterRuns": self.list_dead_letters,
            "bulkCancelRuns": self.bulk_cancel,
            "bulkCancelAllRuns": self.bulk_cancel_all,
            "bulkReplayRuns": self.bulk_replay,
            "bulkReplayDeadLetterRuns": self.bulk_dlq_replay,
            "getRun": self.get_run,
            "cancelRun": self.cancel_run,
            "replayRun": self.replay_run,
            "replayDeadLetterRun": self.dlq_replay_run,
            "streamRun": self.stream_run,
            "streamRunChunks": self.stream_chunks,
            "listChildRuns": self.list_children,
            "listRunEvents": self.list_events,
            "listRunCheckpoints": self.records_of("checkpoints"),
            "listRunUsage": self.records_of("usage"),
            "listRunToolCalls": self.records_of("tool_calls"),
            "listRunOutputs": self.records_of("outputs"),
            "getRunDebugBundle": self.debug_bundle,
            "setRunDebugMode": self.set_debug,
            "listRunLineage": self.list_lineage,
            "getRunDependencyStatus": self.dependency_status,
            "resetRunIdempotencyKey": self.reset_idempotency_key,
            "rescheduleRun": self.reschedule,
            "pauseRun": self.pause,
            "resumeRun": self.resume,
            "restartRun": self.restart,
            "getRunState": self.state,
        }

    def authenticate(self, request: Request, operation: Operation) -> ApiKey:
        return self.model.authenticate(bearer_token(request))

    @property
    def variant(self) -> StraitVariant:
        return self.model.settings.variant

    def render(self, run: Run) -> dict[str, Any]:
        return run_record(run, self.model.jobs.get(run.job_id), self.variant)

    def runs(self, runs: list[Run]) -> JSONResponse:
        return JSONResponse([self.render(r) for r in runs])

    def listing(self, runs: list[Run], limit: int | None) -> JSONResponse:
        """GET /v1/runs and /dlq: the document's array, or the live system's page (variant)."""
        if not self.variant.list_page:
            return self.runs(runs)
        full = limit is not None and len(runs) == limit
        page = {
            "data": [self.render(r) for r in runs],
            "next_cursor": iso(runs[-1].created_ms) if full else None,
            "has_more": full,
        }
        return JSONResponse(page)

    # -- creating and reading ------------------------------------------------------------------

    async def trigger_job(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        body = req.body or {}
        payload = body.get("payload") or {}
        _require_encodable(payload, "payload")
        for name in ("metadata", "tags"):
            _require_encodable(body.get(name) or {}, name)
        opts = TriggerOptions(
            payload=payload,
            metadata=body.get("metadata") or {},
            tags=body.get("tags") or {},
            scheduled_ms=_time(body, "scheduled_at"),
            expires_ms=_time(body, "expires_at"),
            priority=int(body.get("priority", 0)),
            batch_id=body.get("batch_id"),
            concurrency_key=body.get("concurrency_key"),
            debug_mode=bool(body.get("debug_mode", False)),
            max_attempts=_int_or_none(body.get("max_attempts")),
            timeout_secs=_int_or_none(body.get("timeout_secs")),
            idempotency_key=req.headers.get("Idempotency-Key"),
        )
        run, hit = self.model.trigger(who, req.path["jobID"], opts)
        if hit:
            return JSONResponse({**self.render(run), "idempotency_hit": True})
        return JSONResponse(self.render(run), status_code=201)

    async def list_runs(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        q = req.query
        cursor = q.get("cursor")
        return self.listing(
            self.model.list_runs(
                who,
                q["project_id"],
                status=q.get("status"),
                metadata_key=q.get("metadata_key"),
                metadata_value=q.get("metadata_value"),
                limit=q["limit"],
                cursor_ms=parse_time(cursor, "query", "cursor") if cursor else None,
                triggered_by=q.get("triggered_by"),
                batch_id=q.get("batch_id"),
                payload_contains=q.get("payload_contains"),
            ),
            min(q["limit"], MAX_LIMIT),
        )

    async def list_dead_letters(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return self.listing(self.model.dead_letters(who, req.query["project_id"]), None)

    async def get_run(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(self.render(self.model.get_run(who, req.path["runID"])))

    async def list_children(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return self.runs(self.model.children(who, req.path["runID"]))

    async def list_lineage(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return self.runs(self.model.lineage(who, req.path["runID"]))

    async def list_events(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        found = self.model.events(
            who, req.path["runID"], level=req.query.get("level"), type=req.query.get("type")
        )
        return JSONResponse(found)

    def records_of(self, name: str) -> Handler:
        async def handler(req: ValidRequest, who: ApiKey, _: Request) -> Response:
            return JSONResponse(getattr(self.model.run_records(who, req.path["runID"]), name))

        return handler

    async def debug_bundle(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        run = self.model.get_run(who, req.path["runID"])
        records = self.model.records[run.id]
        return JSONResponse(
            {
                "run": self.render(run),
                "events": records.events,
                "checkpoints": records.checkpoints,
                "usage": records.usage,
                "tool_calls": records.tool_calls,
                "outputs": records.outputs,
            }
        )

    async def dependency_status(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(self.model.dependency_status(who, req.path["runID"]))

    async def state(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(self.model.state(who, req.path["runID"]))

    # -- streams -------------------------------------------------------------------------------

    async def stream_run(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        gone = self._gone(who, req.path["runID"])
        if gone is not None:
            return gone
        run = self._streamable(who, req.path["runID"])
        run_id = run.id
        body = sse.deliver(
            self.engine,
            run_id,
            lambda after: self.model.read_stream(run_id, after),
            after=self._start_of(self.model.read_stream(run_id, None)),
            is_terminal_entry=lambda entry: self._ends(run_id, entry, "last_change"),
            is_finished=lambda: self._finished(run_id),
            ping_interval_s=self.ping_interval_s,
            ping=KEEPALIVE,
            with_ids=False,
            stream="strait",
        )
        return StreamingResponse(body, media_type="text/event-stream", headers=dict(sse.HEADERS))

    async def stream_chunks(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        gone = self._gone(who, req.path["runID"])
        if gone is not None:
            return gone
        run = self._streamable(who, req.path["runID"])
        run_id = run.id
        body = sse.deliver(
            self.engine,
            chunks_key(run_id),
            lambda after: self.model.read_chunks(run_id, after),
            after=self._start_of(self.model.read_chunks(run_id, None)),
            is_terminal_entry=lambda entry: self._ends(run_id, entry, "last_chunk"),
            is_finished=lambda: self._finished(run_id),
            ping_interval_s=self.ping_interval_s,
            ping=KEEPALIVE,
            with_ids=False,
            stream="strait",
        )
        return StreamingResponse(body, media_type="text/event-stream", headers=dict(sse.HEADERS))

    def _start_of(self, history: ReadResult) -> StreamId | None:
        """Where a new connection starts: the run's whole history (the reference), or only what
        happens from now on (the `replay_history` variant off)."""
        if self.variant.replay_history or not history.entries:
            return None
        return history.entries[-1].id

    def _gone(self, who: ApiKey, run_id: str) -> Response | None:
        """The 410 of a finished run with the variant's code (FACTS.md's table has none)."""
        if self.variant.gone_code == StraitVariant().gone_code:
            return None
        run = self.model.get_run(who, run_id)
        if not run.terminal:
            return None
        error = {"code": self.variant.gone_code, "message": "run already in terminal state"}
        return JSONResponse({"error": error, "request_id": str(uuid.uuid4())}, status_code=410)

    def _streamable(self, who: ApiKey, run_id: str) -> Run:
        run = self.model.get_run(who, run_id)
        if run.terminal:
            raise Gone("run already in terminal state")
        return run

    def _ends(self, run_id: str, entry: Entry, latest: str) -> bool:
        """A terminal entry ends the stream only while it is the run's latest one: after a
        dlq-replay the earlier dead_letter is history and the stream follows the new life."""
        run = self.model.runs.get(run_id)
        if run is None or entry.id != getattr(run, latest):
            return False
        if latest == "last_chunk":
            return entry.data.get("done") is True
        return _ends_run(entry)

    def _finished(self, run_id: str) -> bool:
        run = self.model.runs.get(run_id)
        return run is None or run.terminal

    # -- controlling ---------------------------------------------------------------------------

    async def cancel_run(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        run = self.model.cancel(who, req.path["runID"])
        if self.variant.cancel_answers_run:
            return JSONResponse(self.render(run))
        return Response(status_code=204)

    async def replay_run(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        run = self.model.replay(who, req.path["runID"])
        return JSONResponse(self.render(run), status_code=201)

    async def dlq_replay_run(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(self.render(self.model.dlq_replay(who, req.path["runID"])))

    async def bulk_cancel(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(bulk_record(self.model.bulk_cancel(who, req.body["run_ids"])))

    async def bulk_cancel_all(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        body = req.body or {}
        items = self.model.bulk_cancel_all(
            who,
            req.query["project_id"],
            job_id=body.get("job_id"),
            batch_id=body.get("batch_id"),
            triggered_by=body.get("triggered_by"),
            status=body.get("status"),
        )
        return JSONResponse(bulk_record(items))

    async def bulk_replay(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return self.runs(self.model.bulk_replay(who, req.body["run_ids"]))

    async def bulk_dlq_replay(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        body = req.body or {}
        runs = self.model.bulk_dlq_replay(
            who, run_ids=body.get("run_ids"), project_id=body.get("project_id")
        )
        return JSONResponse({"replayed": [self.render(r) for r in runs], "count": len(runs)})

    async def set_debug(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        body = req.body or {}
        self.model.set_debug(who, req.path["runID"], bool(body.get("debug_mode", True)))
        return Response(status_code=204)

    async def reset_idempotency_key(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        run = self.model.reset_idempotency_key(who, req.path["runID"])
        answer: dict[str, Any] = {"status": "reset", "run_id": run.id}
        if self.variant.extra_fields:
            answer["reset_at"] = iso(self.engine.now())
        return JSONResponse(answer)

    async def reschedule(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        body = req.body or {}
        # Looked up first: an unknown run is 404 whatever the body says.
        self.model.get_run(who, req.path["runID"])
        when = _time(body, "scheduled_at")
        if when is None:
            raise Unprocessable("scheduled_at", "scheduled_at is required")
        return JSONResponse(self.render(self.model.reschedule(who, req.path["runID"], when)))

    async def pause(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(self.render(self.model.pause(who, req.path["runID"])))

    async def resume(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        return JSONResponse(self.render(self.model.resume(who, req.path["runID"])))

    async def restart(self, req: ValidRequest, who: ApiKey, _: Request) -> Response:
        preset = (req.body or {}).get("machine_preset")
        return JSONResponse(self.render(self.model.restart(who, req.path["runID"], preset)))


def _ends_run(entry: Entry) -> bool:
    data = entry.data
    if data.get("type") != "status_change":
        return False
    return data.get("to") in TERMINAL_WIRE


TERMINAL_WIRE = frozenset(s.value for s in TERMINAL)


def _time(body: Mapping[str, Any], name: str) -> int | None:
    raw = body.get(name)
    return parse_time(raw, "body", name) if raw else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None
