"""AUVY: workspaces, API keys, pathways and the jobs that run them.

A job runs its pathway's script one step per tick of its pacing. Every change is saved through the
store and appended to the job's event stream as the JSON the SSE route sends (`token`,
`state_update`, then a terminal `complete` or `error`).

The document's status enum has no `cancelled`; like BullMQ, which has no such state either, a
cancelled job is `failed` with failedReason "cancelled", and its stream ends with an `error` entry
whose code is CANCELLED.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from ..clock import iso
from ..variants.auvy import AuvyVariant
from .engine import Engine
from .errors import Forbidden, IllegalTransition, InvalidInput, NotFound, Unauthenticated
from .scheduler import Call, Timer
from .script import Complete, Fail, Field, Pause, Progress, Question, Step, Wait, progress_units
from .status import TransitionTable
from .store import MemoryRecords, RecordStore, StreamStore
from .stream import ReadResult
from .stream_id import StreamId


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"
    PAUSED = "paused"


P, R, C, F, W, Z = (
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.WAITING,
    JobStatus.PAUSED,
)

TRANSITIONS: TransitionTable[JobStatus] = TransitionTable(
    "job",
    {
        P: {R, F},
        R: {C, F, W, Z},
        W: {R, F},
        Z: {R, F},
        C: set(),
        F: set(),
    },
)

# What a client may ask for, from which statuses: the table above says which moves exist at all,
# this says which of them each route may trigger.
ACTIONS: Mapping[str, tuple[frozenset[JobStatus], JobStatus]] = {
    "cancel": (frozenset({P, R, W, Z}), F),
    "resume": (frozenset({W, Z}), R),
    "input": (frozenset({W}), R),
}

CANCELLED_REASON = "cancelled"
REJECTED_REASON = "rejected"
TIMEOUT_REASON = "timeout"

# What /_mock/auvy/jobs/{id}/outcome can ask a job to wait for (a person's answer).
FORCED_WAITS: Mapping[str, Wait] = {
    "approval": Wait("approval", "Approve this step? (asked by /_mock/)"),
    "questions": Wait(
        "questions",
        "A few questions before going on (asked by /_mock/)",
        questions=(Question("q1", "Which environment?"), Question("q2", "Since when?")),
    ),
    "input": Wait(
        "input",
        "Details needed to go on (asked by /_mock/)",
        fields=(Field("email"), Field("seats", "number"), Field("note", required=False)),
    ),
}
FORCED_OUTCOMES: tuple[str, ...] = ("complete", "fail", "timeout", *FORCED_WAITS)

InterventionStatus = Literal["pending", "approved", "rejected", "answered", "expired", "cancelled"]
ACTIONS_BY_WAIT: Mapping[str, tuple[str, ...]] = {
    "approval": ("approve", "reject"),
    "input": ("submit_input",),
    "questions": ("answer_questions", "decline_questions"),
}
RESPONSE_STATUS: Mapping[str, InterventionStatus] = {
    "approve": "approved",
    "reject": "rejected",
    "submit_input": "answered",
    "answer_questions": "answered",
    "decline_questions": "rejected",
}

WorkspaceState = Literal["active", "trial_expired", "cost_cap"]
JobKind = Literal["pathway", "transcription", "chat"]


@dataclass(frozen=True)
class Workspace:
    id: str
    slug: str
    name: str
    state: WorkspaceState = "active"


@dataclass(frozen=True)
class ApiKey:
    token: str
    workspace_id: str
    scopes: frozenset[str] = frozenset({"read", "write"})
    rate_limit: tuple[int, int] | None = None  # (requests, window ms): this key's own limit


@dataclass(frozen=True)
class Principal:
    workspace: Workspace
    scopes: frozenset[str]


@dataclass(frozen=True)
class Pathway:
    id: str
    workspace_id: str
    name: str
    script: tuple[Step, ...]
    step_ms: int | None = None


@dataclass
class Trace:
    id: str
    workspace_id: str
    receptor_id: str | None = None
    user_id: str | None = None
    created_ms: int = 0
    job_ids: list[str] = field(default_factory=list)


@dataclass
class Intervention:
    id: str
    job_id: str
    workspace_id: str
    wait: Wait
    created_ms: int
    status: InterventionStatus = "pending"
    responded_ms: int | None = None
    response: dict[str, Any] | None = None


@dataclass
class Job:
    id: str
    workspace_id: str
    kind: JobKind
    script: tuple[Step, ...]
    step_ms: int
    created_ms: int
    input: dict[str, Any] = field(default_factory=dict)
    pathway_id: str | None = None
    receptor_id: str | None = None
    trace_id: str | None = None
    status: JobStatus = JobStatus.PENDING
    pc: int = 0
    unit: int = 0
    done_units: int = 0
    total_units: int = 0
    current_step: str | None = None
    failed_reason: str | None = None
    result: Any = None
    intervention_id: str | None = None
    processed_ms: int | None = None
    finished_ms: int | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def progress(self) -> int:
        if self.status is JobStatus.COMPLETED:
            return 100
        if self.total_units == 0:
            return 0
        return min(99, self.done_units * 100 // self.total_units)

    @property
    def terminal(self) -> bool:
        return TRANSITIONS.is_terminal(self.status)


@dataclass(frozen=True)
class Settings:
    step_ms: int = 50
    start_delay_ms: int = 0
    stream_maxlen: int | None = 10_000
    stream_ttl_ms: int | None = 24 * 3600 * 1000
    max_audio_bytes: int = 10 * 1024 * 1024
    # The other allowed answers this server gives, where the documents leave a choice open.
    variant: AuvyVariant = field(default_factory=AuvyVariant)


DEFAULT_INLINE_SCRIPT: tuple[Step, ...] = (Progress(3, "inline"),)


class AuvyModel:
    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        jobs: RecordStore[Job] | None = None,
        streams: StreamStore,
    ) -> None:
        self.engine = engine
        self.settings = settings or Settings()
        self.jobs: RecordStore[Job] = jobs if jobs is not None else MemoryRecords()
        self.interventions: RecordStore[Intervention] = MemoryRecords()
        self.streams = streams
        self.workspaces: dict[str, Workspace] = {}
        self.keys: dict[str, ApiKey] = {}
        self.pathways: dict[str, Pathway] = {}
        self.traces: MutableMapping[str, Trace] = {}
        self.jwt_secret: str | None = None
        self._timers: dict[str, Timer] = {}

    # -- world ---------------------------------------------------------------------------------

    def add_workspace(self, ws: Workspace) -> None:
        self.workspaces[ws.id] = ws

    def add_key(self, key: ApiKey) -> None:
        if key.workspace_id not in self.workspaces:
            raise ValueError(f"api key for unknown workspace {key.workspace_id}")
        self.keys[key.token] = key

    def add_pathway(self, pathway: Pathway) -> None:
        self.pathways[pathway.id] = pathway

    def add_trace(self, trace: Trace) -> None:
        self.traces[trace.id] = trace

    def set_workspace_state(self, workspace_id: str, state: WorkspaceState) -> None:
        ws = self.workspaces[workspace_id]
        self.workspaces[workspace_id] = Workspace(ws.id, ws.slug, ws.name, state)

    def reset_jobs(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.jobs.clear()
        self.interventions.clear()
        self.streams.clear()

    # -- callers -------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        key = self.keys.get(token or "")
        if key is None:
            raise Unauthenticated("a valid API key is required (Authorization: Bearer <key>)")
        return Principal(self.workspaces[key.workspace_id], key.scopes)

    @staticmethod
    def _require_write(who: Principal) -> None:
        if "write" not in who.scopes:
            raise Forbidden("this API key is read-only", "forbidden")

    def _require_can_start(self, who: Principal) -> None:
        self._require_write(who)
        self.require_billable(who.workspace.id)

    def require_billable(self, workspace_id: str) -> None:
        """Starting work costs money: a workspace past its trial or cost cap may only read."""
        ws = self.workspaces[workspace_id]
        if ws.state == "trial_expired":
            raise Forbidden("the workspace's trial has expired", "trial_expired")
        if ws.state == "cost_cap":
            raise Forbidden("the workspace has reached its cost cap", "cost_cap")

    # -- starting jobs -------------------------------------------------------------------------

    def start_pathway(
        self,
        who: Principal,
        pathway_id: str | None = None,
        *,
        inline: Mapping[str, Any] | None = None,
        input: Mapping[str, Any] | None = None,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        self._require_can_start(who)
        if pathway_id is not None:
            pathway = self.pathways.get(pathway_id)
            if pathway is None or pathway.workspace_id != who.workspace.id:
                raise NotFound("pathway", pathway_id)
            script, step_ms = pathway.script, pathway.step_ms
        else:
            script, step_ms = DEFAULT_INLINE_SCRIPT, None
        job = self.start_script(
            who.workspace.id,
            script,
            step_ms,
            dict(input or {}),
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
        )
        if inline is not None:
            job.input.setdefault("_inline_pathway", dict(inline))
            self.jobs.save(job.id, job)
        return job

    def transcribe(self, who: Principal, audio_base64: str, mime_type: str) -> Job:
        self._require_can_start(who)
        return self.start_transcription(who.workspace.id, audio_base64, mime_type)

    def start_transcription(
        self,
        workspace_id: str,
        audio_base64: str,
        mime_type: str,
        *,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        try:
            audio = base64.b64decode(audio_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("audio_base64", "audio_base64 is not valid base64") from None
        if not audio:
            raise InvalidInput("audio_base64", "audio_base64 decodes to no bytes")
        if len(audio) > self.settings.max_audio_bytes:
            raise InvalidInput(
                "audio_base64", f"audio is larger than {self.settings.max_audio_bytes} bytes"
            )
        text = f"[transcript of {len(audio)} bytes of {mime_type}]"
        script = (
            Progress(2, "transcribe", (text,)),
            Complete({"text": text, "mime_type": mime_type, "bytes": len(audio)}),
        )
        return self._new_job(
            workspace_id,
            "transcription",
            script,
            None,
            {"mime_type": mime_type},
            receptor_id=receptor_id,
            trace_id=trace_id,
        )

    def chat(
        self, who: Principal, trace_id: str, message: str, options: Mapping[str, Any] | None
    ) -> Job:
        self._require_can_start(who)
        trace = self.traces.get(trace_id)
        if trace is None or trace.workspace_id != who.workspace.id:
            raise NotFound("trace", trace_id)
        words = ["You", " said:", *(" " + w for w in message.split()[:20])]
        reply = "".join(words)
        script = (Progress(len(words), "respond", tuple(words)), Complete({"message": reply}))
        job_input: dict[str, Any] = {"message": message}
        if options:
            job_input["neuron_task_options"] = dict(options)
        return self._new_job(who.workspace.id, "chat", script, None, job_input, trace_id=trace_id)

    def start_pathway_for(
        self,
        workspace_id: str,
        pathway_id: str,
        job_input: dict[str, Any],
        *,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        """Start a stored pathway on behalf of a workspace (a receptor firing, not a key)."""
        pathway = self.pathways[pathway_id]
        return self.start_script(
            workspace_id,
            pathway.script,
            pathway.step_ms,
            job_input,
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
        )

    def start_script(
        self,
        workspace_id: str,
        script: tuple[Step, ...],
        step_ms: int | None,
        job_input: dict[str, Any],
        *,
        pathway_id: str | None = None,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        job = self._new_job(
            workspace_id,
            "pathway",
            script,
            step_ms,
            job_input,
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
        )
        if trace_id is not None and (trace := self.traces.get(trace_id)) is not None:
            trace.job_ids.append(job.id)
        return job

    def _new_job(
        self,
        workspace_id: str,
        kind: JobKind,
        script: tuple[Step, ...],
        step_ms: int | None,
        job_input: dict[str, Any],
        *,
        pathway_id: str | None = None,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        now = self.engine.now()
        job = Job(
            id=str(uuid.uuid4()),
            workspace_id=workspace_id,
            kind=kind,
            script=script,
            step_ms=step_ms if step_ms is not None else self.settings.step_ms,
            created_ms=now,
            input=job_input,
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
            total_units=progress_units(script),
        )
        self.streams.create(job.id, now)
        self.jobs.save(job.id, job)
        self._schedule(job, now + self.settings.start_delay_ms)
        return job

    # -- reading -------------------------------------------------------------------------------

    def get_job(self, who: Principal, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        # Another workspace's job is indistinguishable from a missing one: no existence leak.
        if job is None or job.workspace_id != who.workspace.id:
            raise NotFound("job", job_id)
        return job

    def list_jobs(
        self,
        who: Principal,
        *,
        pathway_id: str | None = None,
        receptor_id: str | None = None,
        status: JobStatus | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        found = [
            j
            for j in self.jobs.values()
            if j.workspace_id == who.workspace.id
            and (pathway_id is None or j.pathway_id == pathway_id)
            and (receptor_id is None or j.receptor_id == receptor_id)
            and (status is None or j.status is status)
        ]
        # Newest first; the id breaks ties so pages are stable when jobs share a millisecond.
        found.sort(key=lambda j: (-j.created_ms, j.id))
        return found[offset : offset + limit], len(found)

    def waiting_for(self, job: Job) -> Intervention | None:
        if job.status is not JobStatus.WAITING or job.intervention_id is None:
            return None
        return self.interventions.get(job.intervention_id)

    def read_events(self, job: Job, after: StreamId | None, count: int | None = None) -> ReadResult:
        return self.streams.read_after(job.id, after, self.engine.now(), count)

    # -- controlling ---------------------------------------------------------------------------

    def cancel(self, who: Principal, job_id: str) -> Job:
        self._require_write(who)
        job = self.get_job(who, job_id)
        self._check_action(job, "cancel")
        variant = self.settings.variant
        if variant.cancel_reason_is_code:
            self._fail(job, CANCELLED_REASON, "CANCELLED", "Job cancelled", self.engine.now())
        else:
            # Another wording: the documents name neither the reason nor the error entry's code.
            self._fail(
                job,
                "Job was cancelled by the user",
                "JOB_CANCELLED",
                "Cancelled",
                self.engine.now(),
            )
        return job

    def resume(self, who: Principal, job_id: str) -> Job:
        self._require_write(who)
        job = self.get_job(who, job_id)
        self._check_action(job, "resume")
        now = self.engine.now()
        intervention = self.waiting_for(job)
        if intervention is not None:
            self._close_intervention(intervention, "cancelled", now, None)
        self._continue(job, now)
        return job

    def submit_input(
        self, who: Principal, job_id: str, workspace_id: str, response: Mapping[str, Any]
    ) -> Job:
        self._require_write(who)
        job = self.get_job(who, job_id)
        if workspace_id != who.workspace.id:
            raise InvalidInput("workspace_id", "workspace_id is not the workspace of this API key")
        self._check_action(job, "input")
        intervention = self.waiting_for(job)
        assert intervention is not None, "a waiting job always has a pending intervention"
        if response.get("interventionId") != intervention.id:
            raise InvalidInput(
                "input.interventionId", "interventionId is not the job's pending intervention"
            )
        self._apply_response(job, intervention, response, "input.")
        return job

    # -- interventions -------------------------------------------------------------------------

    def list_interventions(
        self,
        who: Principal,
        *,
        job_id: str | None = None,
        trace_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> tuple[list[Intervention], int]:
        found = [
            i
            for i in self.interventions.values()
            if i.workspace_id == who.workspace.id
            and (job_id is None or i.job_id == job_id)
            and (trace_id is None or self._trace_of(i) == trace_id)
            and (status is None or i.status == status)
        ]
        found.sort(key=lambda i: (-i.created_ms, i.id))
        return found[:limit], len(found)

    def get_intervention(self, who: Principal, intervention_id: str) -> Intervention:
        intervention = self.interventions.get(intervention_id)
        if intervention is None or intervention.workspace_id != who.workspace.id:
            raise NotFound("intervention", intervention_id)
        return intervention

    def respond(
        self, who: Principal, intervention_id: str, response: Mapping[str, Any]
    ) -> Intervention:
        """POST /v1/interventions/{id}/respond: the same matching as job input, by id."""
        self._require_write(who)
        intervention = self.get_intervention(who, intervention_id)
        if intervention.status != "pending":
            raise InvalidInput(
                "interventionId",
                f"the intervention is no longer pending (it is {intervention.status})",
            )
        job = self.jobs.get(intervention.job_id)
        assert job is not None and job.intervention_id == intervention.id, "pending means waiting"
        self._apply_response(job, intervention, {**response, "interventionId": intervention.id}, "")
        return intervention

    def _trace_of(self, intervention: Intervention) -> str | None:
        job = self.jobs.get(intervention.job_id)
        return job.trace_id if job is not None else None

    def _apply_response(
        self, job: Job, intervention: Intervention, response: Mapping[str, Any], where: str
    ) -> None:
        self._match_response(intervention, response, where)
        now = self.engine.now()
        action = str(response["action"])
        recorded = {k: v for k, v in response.items() if k != "type"}
        self._close_intervention(intervention, RESPONSE_STATUS[action], now, recorded)
        job.responses.append(recorded)
        if action == "reject":
            self._fail(job, REJECTED_REASON, "INTERVENTION_REJECTED", "Intervention rejected", now)
        else:
            self._continue(job, now)

    def _check_action(self, job: Job, action: str) -> None:
        sources, target = ACTIONS[action]
        if job.status not in sources:
            raise IllegalTransition("job", job.id, job.status.value, action)
        TRANSITIONS.check(job.id, job.status, target, action)

    @staticmethod
    def _match_response(
        intervention: Intervention, response: Mapping[str, Any], where: str
    ) -> None:
        """Check a response against the intervention it answers; `where` prefixes field names
        (input. for job input, nothing for /respond)."""
        wait = intervention.wait
        action = response.get("action")
        allowed = ACTIONS_BY_WAIT[wait.kind]
        if action not in allowed:
            raise InvalidInput(
                f"{where}action",
                f"a {wait.kind} intervention accepts {' or '.join(allowed)}, not {action}",
            )
        if action == "submit_input":
            values = response.get("fields")
            if not isinstance(values, Mapping):
                raise InvalidInput(f"{where}fields", "submit_input needs a fields object")
            for f in wait.fields:
                if f.name not in values:
                    if f.required:
                        raise InvalidInput(f"{where}fields.{f.name}", f"field {f.name} is required")
                    continue
                if not _matches_type(values[f.name], f.type):
                    raise InvalidInput(
                        f"{where}fields.{f.name}", f"field {f.name} must be {f.type}"
                    )
            unknown = set(values) - {f.name for f in wait.fields}
            if unknown:
                name = sorted(unknown)[0]
                raise InvalidInput(f"{where}fields.{name}", f"the intervention has no field {name}")
        if action == "answer_questions":
            answers = response.get("answers")
            if not isinstance(answers, Mapping):
                raise InvalidInput(f"{where}answers", "answer_questions needs an answers object")
            for q in wait.questions:
                if not isinstance(answers.get(q.id), str):
                    raise InvalidInput(f"{where}answers.{q.id}", f"question {q.id} needs an answer")
            unknown = set(answers) - {q.id for q in wait.questions}
            if unknown:
                name = sorted(unknown)[0]
                raise InvalidInput(
                    f"{where}answers.{name}", f"the intervention has no question {name}"
                )

    # -- running -------------------------------------------------------------------------------

    def _schedule(self, job: Job, due_ms: int) -> None:
        job_id = job.id
        self._timers[job_id] = self.engine.scheduler.at(due_ms, Call(self, "_tick", (job_id,)))

    def _unschedule(self, job: Job) -> None:
        timer = self._timers.pop(job.id, None)
        if timer is not None:
            timer.cancel()

    def _tick(self, job_id: str, now: int) -> None:
        self._timers.pop(job_id, None)
        job = self.jobs.get(job_id)
        if job is None or job.status not in (JobStatus.PENDING, JobStatus.RUNNING):
            return
        if job.status is JobStatus.PENDING:
            self._move(job, JobStatus.RUNNING, now)
            job.processed_ms = now
            self._emit_state(job, now)
            self._save(job, now, reschedule=True)
            return
        step: Step = job.script[job.pc] if job.pc < len(job.script) else Complete({})
        if isinstance(step, Progress):
            self._run_progress(job, step, now)
        elif isinstance(step, Wait):
            job.pc += 1
            self._wait(job, step, now)
        elif isinstance(step, Pause):
            job.pc += 1
            job.current_step = step.reason
            self._move(job, JobStatus.PAUSED, now)
            self._emit_state(job, now)
            self._save(job, now)
        elif isinstance(step, Fail):
            self._fail(job, step.reason, "JOB_FAILED", step.reason, now)
        else:
            self._complete(job, step, now)

    def _run_progress(self, job: Job, step: Progress, now: int) -> None:
        token = (
            step.tokens[job.unit % len(step.tokens)]
            if step.tokens
            else f"{step.name} {job.unit + 1}/{step.count} "
        )
        job.unit += 1
        job.done_units += 1
        job.current_step = step.name
        if job.unit >= step.count:
            job.pc += 1
            job.unit = 0
        self._append(job, {"type": "token", self.settings.variant.token_field: token}, now)
        if self.settings.variant.unknown_event_types:
            # An entry of a type no document lists, between the known ones: readers must skip it.
            self._append(job, {"type": "usage", "tokens": len(token.split())}, now)
        self._emit_state(job, now)
        self._save(job, now, reschedule=True)

    def _wait(self, job: Job, step: Wait, now: int) -> None:
        intervention = Intervention(
            id=f"int_{uuid.uuid4().hex[:20]}",
            job_id=job.id,
            workspace_id=job.workspace_id,
            wait=step,
            created_ms=now,
        )
        self.interventions.save(intervention.id, intervention)
        job.intervention_id = intervention.id
        job.current_step = f"waiting for {step.kind}"
        self._move(job, JobStatus.WAITING, now)
        self._emit_state(job, now)
        self._save(job, now)

    def _continue(self, job: Job, now: int) -> None:
        self._move(job, JobStatus.RUNNING, now)
        job.intervention_id = None
        self._emit_state(job, now)
        self._save(job, now)
        self._schedule(job, now + job.step_ms)

    def _complete(self, job: Job, step: Complete, now: int) -> None:
        result: dict[str, Any] = dict(step.result)
        if job.responses:
            result["responses"] = list(job.responses)
        self._move(job, JobStatus.COMPLETED, now)
        job.result = result
        job.finished_ms = now
        job.current_step = None
        self._emit_state(job, now)
        complete: dict[str, Any] = {"type": "complete"}
        if self.settings.variant.complete_carries_result:
            complete["result"] = result
        self._append(job, complete, now)
        self._save(job, now)

    def _fail(self, job: Job, reason: str, code: str, message: str, now: int) -> None:
        self._unschedule(job)
        intervention = self.waiting_for(job)
        # A reject has already closed it as rejected (with the response): keep that.
        if intervention is not None and intervention.status == "pending":
            self._close_intervention(intervention, "cancelled", now, None)
        self._move(job, JobStatus.FAILED, now)
        job.failed_reason = reason
        job.finished_ms = now
        job.intervention_id = None
        self._emit_state(job, now)
        self._append(job, {"type": "error", "code": code, "message": message}, now)
        self._save(job, now)

    def _close_intervention(
        self,
        intervention: Intervention,
        status: InterventionStatus,
        now: int,
        response: dict[str, Any] | None,
    ) -> None:
        intervention.status = status
        intervention.responded_ms = now
        intervention.response = response
        self.interventions.save(intervention.id, intervention)

    def _move(self, job: Job, target: JobStatus, now: int) -> None:
        TRANSITIONS.check(job.id, job.status, target, f"move to {target.value}")
        job.status = target

    def _append(self, job: Job, entry: dict[str, Any], now: int) -> None:
        if self.settings.variant.extra_fields:
            entry = {**entry, "x_worker": "variant-worker-1"}
        self.streams.append(job.id, entry, now)

    def _emit_state(self, job: Job, now: int) -> None:
        intervention = self.waiting_for(job)
        self._append(
            job,
            {
                "type": "state_update",
                "status": job.status.value,
                "progress": job.progress,
                "current_step": job.current_step,
                "waitingFor": render_waiting_for(intervention) if intervention else None,
            },
            now,
        )

    def _save(self, job: Job, now: int, *, reschedule: bool = False) -> None:
        self.jobs.save(job.id, job)
        if reschedule:
            self._schedule(job, now + job.step_ms)
        self.engine.notify(job.id)

    # -- forcing outcomes (control routes) -----------------------------------------------------

    def force(self, job_id: str, outcome: str, reason: str | None = None) -> Job:
        """Drive a job to an outcome now, as the /_mock/ control routes and the inspector do."""
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("job", job_id)
        now = self.engine.now()
        if outcome == "complete":
            if job.terminal:
                raise IllegalTransition("job", job.id, job.status.value, "complete")
            if job.status is not JobStatus.RUNNING:
                self._unschedule(job)
                self._close_pending(job, now)
                if job.status is JobStatus.PENDING:
                    job.processed_ms = now
                self._move(job, JobStatus.RUNNING, now)
                # Every status change is on the stream: readers never see paused -> completed.
                self._emit_state(job, now)
            self._unschedule(job)
            self._complete(job, Complete({"forced": True}), now)
        elif outcome == "fail":
            if job.terminal:
                raise IllegalTransition("job", job.id, job.status.value, "fail")
            self._fail(
                job, reason or "forced failure", "JOB_FAILED", reason or "forced failure", now
            )
        elif outcome == "timeout":
            if job.terminal:
                raise IllegalTransition("job", job.id, job.status.value, "timeout")
            # The documents define no timeout; this is what a UI should expect from one.
            self._fail(job, TIMEOUT_REASON, "TIMEOUT", reason or "Job timed out", now)
        elif outcome in FORCED_WAITS:
            if job.terminal or job.status is JobStatus.WAITING:
                raise IllegalTransition("job", job.id, job.status.value, outcome)
            self._unschedule(job)
            if job.status is not JobStatus.RUNNING:
                if job.status is JobStatus.PENDING:
                    job.processed_ms = now
                self._move(job, JobStatus.RUNNING, now)
                self._emit_state(job, now)
            wait = FORCED_WAITS[outcome]
            # Once answered, the job carries on with its own script where it was.
            self._wait(job, replace(wait, prompt=reason) if reason else wait, now)
        else:
            raise InvalidInput("outcome", f"outcome must be one of {', '.join(FORCED_OUTCOMES)}")
        return job

    def _close_pending(self, job: Job, now: int) -> None:
        intervention = self.waiting_for(job)
        if intervention is not None:
            self._close_intervention(intervention, "cancelled", now, None)
            job.intervention_id = None


def _matches_type(value: object, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def render_waiting_for(intervention: Intervention) -> dict[str, Any]:
    wait = intervention.wait
    out: dict[str, Any] = {
        "interventionId": intervention.id,
        "type": wait.kind,
        "prompt": wait.prompt,
        "actions": list(ACTIONS_BY_WAIT[wait.kind]),
        "created_at": iso(intervention.created_ms),
    }
    if wait.kind == "input":
        out["fields"] = [
            {"name": f.name, "type": f.type, "required": f.required} for f in wait.fields
        ]
    if wait.kind == "questions":
        out["questions"] = [{"id": q.id, "text": q.text} for q in wait.questions]
    return out
