"""Strait: projects, API keys, jobs with known behaviour, and the runs they make.

A run is created by triggering a job and then follows its job's behaviour on the engine's clock:
delayed (until scheduled_at) -> queued -> dequeued -> executing -> an outcome. Every move goes
through `TRANSITIONS` (FACTS.md's table), and every move and recorded event is appended to the
run's stream, which `/stream` replays. A failed attempt with attempts left goes back to queued
with `next_retry_at` set by the job's backoff; when attempts run out the run is dead_letter.

The document's status enum has no `paused`; the live system's paused runs are kept here as
`PAUSED` and rendered as `waiting` (`wire_status`), the document's word for a run that is not
progressing.

Records every attempt writes (events, a checkpoint, a tool call, model usage, LLM chunks, and on
success a structured output) exist so that every read endpoint returns real data.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..clock import iso
from ..variants.strait import StraitVariant
from .engine import Engine
from .errors import Conflict, IllegalTransition, InvalidInput, NotFound, Unauthenticated
from .scheduler import Call, Timer
from .status import TransitionTable
from .store import MemoryStreams
from .stream import ReadResult
from .stream_id import StreamId


class RunStatus(StrEnum):
    DELAYED = "delayed"
    QUEUED = "queued"
    DEQUEUED = "dequeued"
    EXECUTING = "executing"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    SYSTEM_FAILED = "system_failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DEAD_LETTER = "dead_letter"
    PAUSED = "paused"  # the live system's; rendered as waiting (see the module docstring)


S = RunStatus
TRANSITIONS: TransitionTable[RunStatus] = TransitionTable(
    "run",
    {
        # Reschedule moves a queued run with a future time back to delayed (FACTS.md's rule),
        # an edge the table of FACTS.md does not list.
        S.DELAYED: {S.QUEUED, S.CANCELED, S.EXPIRED},
        S.QUEUED: {S.DEQUEUED, S.EXECUTING, S.CANCELED, S.EXPIRED, S.DELAYED},
        S.DEQUEUED: {S.EXECUTING, S.QUEUED, S.CANCELED, S.SYSTEM_FAILED},
        S.EXECUTING: {
            S.COMPLETED,
            S.FAILED,
            S.TIMED_OUT,
            S.CRASHED,
            S.CANCELED,
            S.WAITING,
            S.QUEUED,
            S.SYSTEM_FAILED,
            S.DEAD_LETTER,
            S.PAUSED,
        },
        S.WAITING: {S.EXECUTING, S.COMPLETED, S.FAILED, S.CANCELED, S.TIMED_OUT},
        S.PAUSED: {S.QUEUED, S.CANCELED},
        S.COMPLETED: set(),
        S.FAILED: set(),
        S.TIMED_OUT: set(),
        S.CRASHED: set(),
        S.SYSTEM_FAILED: set(),
        S.CANCELED: set(),
        S.EXPIRED: set(),
        S.DEAD_LETTER: {S.QUEUED},
    },
)

# dead_letter has an edge (dlq-replay) yet is terminal: nothing happens to it by itself.
TERMINAL = frozenset(TRANSITIONS.terminal | {S.DEAD_LETTER})
CANCELLABLE = frozenset(s for s in TRANSITIONS.statuses() if TRANSITIONS.allowed(s, S.CANCELED))
REPLAYABLE = frozenset({S.FAILED, S.TIMED_OUT, S.CRASHED, S.SYSTEM_FAILED})
KEY_BUSY = frozenset({S.DEQUEUED, S.EXECUTING, S.WAITING})
TRIGGER_SOURCES = ("manual", "cron", "spawn", "workflow", "retry", "event")
EVENT_LEVELS = ("debug", "info", "warn", "error")
DEFAULT_LIMIT, MAX_LIMIT, MAX_BULK = 50, 100, 100
TERMINAL_MESSAGE = "run already in terminal state"
KEY_PATTERN = re.compile(r"strait_[0-9a-f]{64}")


def wire_status(status: RunStatus, paused: bool = False) -> str:
    """The status as responses report it: a paused run is `waiting` (the document's enum), or
    with the `paused_status` variant the live system's `paused`."""
    if status is S.PAUSED and not paused:
        return S.WAITING.value
    return status.value


class Behaviour(StrEnum):
    COMPLETE = "complete"  # executes `ticks` steps, then completes with the job's result
    FAIL = "fail"  # its first `fail_attempts` attempts fail (retryable), later ones complete
    FATAL = "fatal"  # fails with a non-retryable error: failed at once
    CRASH = "crash"  # the worker's heartbeat stops: crashed
    SYSTEM_FAIL = "system_fail"  # the platform cannot start it: dequeued -> system_failed
    WAIT = "wait"  # executes, waits `wait_ticks` steps, executes again, completes
    SPAWN = "spawn"  # spawns `spawn_count` runs of `spawn_job`, waits for them, completes
    CONTINUE = "continue"  # completes and continues as a new run until `continue_depth`
    LONG = "long"  # executes until canceled, paused or timed out


def uuid7(now_ms: int) -> str:
    """A UUIDv7 (FACTS.md): 48 bits of ms, version 7, variant 10, random otherwise."""
    value = (now_ms & (2**48 - 1)) << 80 | 0x7 << 76 | secrets.randbits(12) << 64
    value |= 0b10 << 62 | secrets.randbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Project:
    id: str
    name: str


@dataclass(frozen=True)
class ApiKey:
    id: str
    token: str
    project_id: str


@dataclass(frozen=True)
class Job:
    id: str
    project_id: str
    name: str
    behaviour: Behaviour = Behaviour.COMPLETE
    max_attempts: int = 3
    timeout_secs: int = 300
    retry_backoff: str = "exponential"
    retry_initial_delay_secs: int = 1
    retry_max_delay_secs: int = 30
    ticks: int = 2
    fail_attempts: int = 0
    wait_ticks: int = 2
    spawn_job: str | None = None
    spawn_count: int = 0
    continue_depth: int = 0
    depends_on: tuple[str, ...] = ()
    version: int = 1
    result: Mapping[str, Any] = field(default_factory=dict)

    def backoff_secs(self, attempt: int) -> int:
        """The delay before attempt + 1: fixed, or doubling from the initial delay, capped."""
        if self.retry_backoff == "fixed":
            return self.retry_initial_delay_secs
        delay: int = self.retry_initial_delay_secs * 2 ** max(0, attempt - 1)
        return min(delay, self.retry_max_delay_secs)


@dataclass
class Run:
    id: str
    job_id: str
    project_id: str
    created_ms: int
    triggered_by: str
    status: RunStatus = S.QUEUED
    attempt: int = 1
    payload: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    scheduled_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    heartbeat_ms: int | None = None
    next_retry_ms: int | None = None
    expires_ms: int | None = None
    parent_run_id: str | None = None
    priority: int = 0
    idempotency_key: str | None = None
    job_version: int = 1
    max_attempts_override: int | None = None
    timeout_secs_override: int | None = None
    debug_mode: bool = False
    continuation_of: str | None = None
    lineage_depth: int = 0
    created_by: str | None = None
    batch_id: str | None = None
    concurrency_key: str | None = None
    # Bookkeeping the API does not show.
    eligible_ms: int = 0
    dequeued_ms: int | None = None
    trace: dict[str, int | None] | None = None
    ticks_done: int = 0
    waited: bool = False
    children_spawned: bool = False
    # The latest status change and LLM chunk in the run's streams: a stream ends at a terminal
    # entry only if it is the latest, since a dlq-replayed run lives on after its first end.
    last_change: StreamId | None = None
    last_chunk: StreamId | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class RunRecords:
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 0


@dataclass(frozen=True)
class Settings:
    step_ms: int = 250
    start_delay_ms: int = 0
    # How long one second of job configuration (timeout_secs, retry delays) lasts, so CI can
    # run a 1 s backoff in 100 ms; the rendered times are on the same clock.
    second_ms: int = 1000
    # The other allowed answers this server gives, where the documents leave a choice open.
    variant: StraitVariant = field(default_factory=StraitVariant)


@dataclass(frozen=True)
class BulkItem:
    id: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class TriggerOptions:
    payload: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    scheduled_ms: int | None = None
    expires_ms: int | None = None
    priority: int = 0
    batch_id: str | None = None
    concurrency_key: str | None = None
    debug_mode: bool = False
    max_attempts: int | None = None
    timeout_secs: int | None = None
    idempotency_key: str | None = None


class RunTerminal(IllegalTransition):
    def __init__(self, run: Run, action: str) -> None:
        super().__init__("run", run.id, run.status.value, action)
        self.message = TERMINAL_MESSAGE
        self.args = (TERMINAL_MESSAGE,)


def contains(whole: Any, part: Any) -> bool:
    """JSONB's `@>`: objects by member, arrays by element (any order), scalars by equality."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and contains(whole[k], v) for k, v in part.items()
        )
    if isinstance(part, list):
        return isinstance(whole, list) and all(any(contains(w, p) for w in whole) for p in part)
    if isinstance(part, bool) or isinstance(whole, bool):
        return isinstance(part, bool) and isinstance(whole, bool) and part == whole
    return bool(whole == part)


class StraitModel:
    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings or Settings()
        self.projects: dict[str, Project] = {}
        self.keys: dict[str, ApiKey] = {}
        self.jobs: dict[str, Job] = {}
        self.dependencies: dict[str, list[dict[str, Any]]] = {}
        self.runs: MutableMapping[str, Run] = {}
        self.records: MutableMapping[str, RunRecords] = {}
        self.streams = MemoryStreams(maxlen=None, ttl_ms=None)
        self._timers: dict[tuple[str, str], Timer] = {}
        self._idempotency: dict[tuple[str, str, str], str] = {}
        self._last_created = 0
        self._seq = itertools.count(1)

    # -- world ---------------------------------------------------------------------------------

    def add_project(self, project: Project) -> None:
        self.projects[project.id] = project

    def add_key(self, key: ApiKey) -> None:
        if key.project_id not in self.projects:
            raise ValueError(f"key {key.id} names unknown project {key.project_id}")
        if not KEY_PATTERN.fullmatch(key.token):
            raise ValueError(f"key {key.id}: a token is strait_ and 64 lower-case hex digits")
        self.keys[key.token] = key

    def add_job(self, job: Job) -> None:
        if job.project_id not in self.projects:
            raise ValueError(f"job {job.id} names unknown project {job.project_id}")
        self.jobs[job.id] = job
        now = self.engine.now()
        self.dependencies[job.id] = [
            {
                "id": uuid7(now),
                "job_id": job.id,
                "depends_on_job_id": other,
                "condition": "completed",
                "created_at": iso(now),
            }
            for other in job.depends_on
        ]

    def reset_runs(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.runs.clear()
        self.records.clear()
        self.streams.clear()
        self._idempotency.clear()

    def clear_world(self) -> None:
        self.reset_runs()
        self.projects.clear()
        self.keys.clear()
        self.jobs.clear()
        self.dependencies.clear()

    # -- callers -------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> ApiKey:
        key = self.keys.get(token or "")
        if key is None:
            raise Unauthenticated("a valid API key is required (Authorization: Bearer strait_...)")
        return key

    def _wire(self, status: RunStatus) -> str:
        return wire_status(status, self.settings.variant.paused_status)

    def _foreign(self, who: ApiKey, project_id: str) -> bool:
        """Whether a listing names another project and the variant answers it with nothing."""
        return self.settings.variant.foreign_project_empty and project_id != who.project_id

    def _project(self, who: ApiKey, project_id: str) -> Project:
        # Another project's id reads as unknown, like another project's run.
        if project_id != who.project_id or project_id not in self.projects:
            raise NotFound("project", project_id)
        return self.projects[project_id]

    # -- triggering ----------------------------------------------------------------------------

    def trigger(self, who: ApiKey, job_id: str, opts: TriggerOptions) -> tuple[Run, bool]:
        """The new run, or (idempotency hit) the live run made with the same key; and whether
        it was a hit."""
        job = self.jobs.get(job_id)
        if job is None or job.project_id != who.project_id:
            raise NotFound("job", job_id)
        if opts.idempotency_key is not None:
            known = self._idempotency.get((job.project_id, job.id, opts.idempotency_key))
            earlier = self.runs.get(known) if known else None
            if (
                earlier is not None
                and earlier.idempotency_key == opts.idempotency_key
                and not earlier.terminal
            ):
                return earlier, True
        run = self._create(job, "manual", opts, created_by=who.id)
        return run, False

    def _create(
        self,
        job: Job,
        triggered_by: str,
        opts: TriggerOptions,
        *,
        created_by: str | None,
        parent: Run | None = None,
        continues: Run | None = None,
    ) -> Run:
        now = self.engine.now()
        # Unique, increasing created_at: the list cursor is a created_at and must not tie.
        created = max(now, self._last_created + 1)
        self._last_created = created
        run = Run(
            id=uuid7(created),
            job_id=job.id,
            project_id=job.project_id,
            created_ms=created,
            triggered_by=triggered_by,
            payload=dict(opts.payload),
            metadata=dict(opts.metadata),
            tags=dict(opts.tags),
            scheduled_ms=opts.scheduled_ms,
            expires_ms=opts.expires_ms,
            parent_run_id=parent.id if parent else None,
            priority=opts.priority,
            idempotency_key=opts.idempotency_key,
            job_version=job.version,
            max_attempts_override=opts.max_attempts,
            timeout_secs_override=opts.timeout_secs,
            debug_mode=opts.debug_mode,
            continuation_of=continues.id if continues else None,
            lineage_depth=continues.lineage_depth + 1 if continues else 0,
            created_by=created_by,
            batch_id=opts.batch_id,
            concurrency_key=opts.concurrency_key,
        )
        self.runs[run.id] = run
        self.records[run.id] = RunRecords()
        self.streams.create(run.id, now)
        self.streams.create(chunks_key(run.id), now)
        if opts.idempotency_key is not None:
            self._idempotency[(job.project_id, job.id, opts.idempotency_key)] = run.id
        if opts.scheduled_ms is not None and opts.scheduled_ms > now:
            run.status = S.DELAYED
            run.eligible_ms = opts.scheduled_ms
            self._at(run, "step", opts.scheduled_ms, self._promote)
        else:
            run.eligible_ms = now
            self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)
        if opts.expires_ms is not None:
            self._at(run, "expiry", max(opts.expires_ms, now), self._expire)
        self.engine.notify(run.id)
        return run

    # -- reading -------------------------------------------------------------------------------

    def get_run(self, who: ApiKey, run_id: str) -> Run:
        run = self.runs.get(run_id)
        # Another project's run is indistinguishable from a missing one (FACTS.md).
        if run is None or run.project_id != who.project_id:
            raise NotFound("run", run_id)
        return run

    def list_runs(
        self,
        who: ApiKey,
        project_id: str,
        *,
        status: str | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor_ms: int | None = None,
        triggered_by: str | None = None,
        batch_id: str | None = None,
        payload_contains: Any = None,
    ) -> list[Run]:
        if self._foreign(who, project_id):
            return []
        self._project(who, project_id)
        if limit <= 0:
            raise InvalidInput("limit", "limit must be a positive integer")
        if metadata_value is not None and metadata_key is None:
            raise InvalidInput("metadata_value", "metadata_value needs metadata_key")
        # The decoded JSON of the query parameter (the spec layer parsed it).
        wanted: Any = payload_contains
        if wanted is not None and not isinstance(wanted, dict):
            raise InvalidInput("payload_contains", "payload_contains must be a JSON object")
        found = [
            r
            for r in self.runs.values()
            if r.project_id == project_id
            and (status is None or self._wire(r.status) == status)
            and (metadata_key is None or metadata_key in r.metadata)
            and (metadata_value is None or r.metadata.get(metadata_key or "") == metadata_value)
            and (cursor_ms is None or r.created_ms < cursor_ms)
            and (triggered_by is None or r.triggered_by == triggered_by)
            and (batch_id is None or r.batch_id == batch_id)
            and (wanted is None or contains(r.payload, wanted))
        ]
        found.sort(key=lambda r: -r.created_ms)
        return found[: min(limit, MAX_LIMIT)]

    def dead_letters(self, who: ApiKey, project_id: str) -> list[Run]:
        if self._foreign(who, project_id):
            return []
        self._project(who, project_id)
        found = [
            r
            for r in self.runs.values()
            if r.project_id == project_id and r.status is S.DEAD_LETTER
        ]
        return sorted(found, key=lambda r: -r.created_ms)

    def children(self, who: ApiKey, run_id: str) -> list[Run]:
        run = self.get_run(who, run_id)
        found = [r for r in self.runs.values() if r.parent_run_id == run.id]
        return sorted(found, key=lambda r: r.created_ms)

    def lineage(self, who: ApiKey, run_id: str) -> list[Run]:
        run = self.get_run(who, run_id)
        root = run
        while root.continuation_of is not None and root.continuation_of in self.runs:
            root = self.runs[root.continuation_of]
        chain = [root]
        successors = {r.continuation_of: r for r in self.runs.values() if r.continuation_of}
        while chain[-1].id in successors:
            chain.append(successors[chain[-1].id])
        return chain

    def run_records(self, who: ApiKey, run_id: str) -> RunRecords:
        return self.records[self.get_run(who, run_id).id]

    def events(
        self, who: ApiKey, run_id: str, *, level: str | None = None, type: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            e
            for e in self.run_records(who, run_id).events
            if (level is None or e["level"] == level) and (type is None or e["type"] == type)
        ]

    def dependency_status(self, who: ApiKey, run_id: str) -> dict[str, Any]:
        run = self.get_run(who, run_id)
        deps = self.dependencies.get(run.job_id, [])
        done = {
            r.job_id
            for r in self.runs.values()
            if r.project_id == run.project_id and r.status is S.COMPLETED
        }
        return {
            "run_id": run.id,
            "job_id": run.job_id,
            "status": self._wire(run.status),
            "dependencies": list(deps),
            "dependencies_satisfied": all(d["depends_on_job_id"] in done for d in deps),
        }

    def state(self, who: ApiKey, run_id: str) -> dict[str, Any]:
        run = self.get_run(who, run_id)
        checkpoints = self.records[run.id].checkpoints
        last = checkpoints[-1] if checkpoints else None
        return {
            "run_id": run.id,
            "status": self._wire(run.status),
            "attempt": run.attempt,
            "paused": run.status is S.PAUSED,
            "checkpoint_sequence": last["sequence"] if last else None,
            "state": last["state"] if last else {},
        }

    def read_stream(self, run_id: str, after: StreamId | None) -> ReadResult:
        return self.streams.read_after(run_id, after, self.engine.now())

    def read_chunks(self, run_id: str, after: StreamId | None) -> ReadResult:
        return self.streams.read_after(chunks_key(run_id), after, self.engine.now())

    # -- controlling ---------------------------------------------------------------------------

    def cancel(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status not in CANCELLABLE:
            raise RunTerminal(run, "cancel")
        self._cancel(run, self.engine.now())
        return run

    def _cancel(self, run: Run, now: int) -> None:
        self._finish(run, S.CANCELED, now, "canceled")
        for child in list(self.runs.values()):
            if child.parent_run_id == run.id and child.status in CANCELLABLE:
                self._cancel(child, now)

    def bulk_cancel(self, who: ApiKey, run_ids: Iterable[str]) -> list[BulkItem]:
        out = []
        for run_id in run_ids:
            run = self.runs.get(run_id)
            if run is None or run.project_id != who.project_id:
                out.append(BulkItem(run_id, "not_found", "run not found"))
            elif run.status not in CANCELLABLE:
                out.append(BulkItem(run_id, self._wire(run.status), TERMINAL_MESSAGE))
            else:
                self._cancel(run, self.engine.now())
                out.append(BulkItem(run_id, self._wire(run.status)))
        return out

    def bulk_cancel_all(
        self,
        who: ApiKey,
        project_id: str,
        *,
        job_id: str | None = None,
        batch_id: str | None = None,
        triggered_by: str | None = None,
        status: str | None = None,
    ) -> list[BulkItem]:
        self._project(who, project_id)
        if job_id is None and batch_id is None and triggered_by is None and status is None:
            raise InvalidInput("", "at least one of job_id, batch_id, triggered_by, status")
        matching = [
            r.id
            for r in sorted(self.runs.values(), key=lambda r: -r.created_ms)
            if r.project_id == project_id
            and not r.terminal
            and (job_id is None or r.job_id == job_id)
            and (batch_id is None or r.batch_id == batch_id)
            and (triggered_by is None or r.triggered_by == triggered_by)
            and (status is None or self._wire(r.status) == status)
        ]
        return self.bulk_cancel(who, matching)

    def replay(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        self._check_replayable(run)
        return self._replay(run)

    def _check_replayable(self, run: Run) -> None:
        if run.status not in REPLAYABLE:
            raise IllegalTransition("run", run.id, self._wire(run.status), "replay")

    def _replay(self, run: Run) -> Run:
        job = self.jobs[run.job_id]
        opts = TriggerOptions(
            payload=run.payload,
            metadata=run.metadata,
            tags=run.tags,
            priority=run.priority,
            batch_id=run.batch_id,
            concurrency_key=run.concurrency_key,
            debug_mode=run.debug_mode,
            max_attempts=run.max_attempts_override,
            timeout_secs=run.timeout_secs_override,
        )
        return self._create(job, "manual", opts, created_by=run.created_by)

    def bulk_replay(self, who: ApiKey, run_ids: list[str]) -> list[Run]:
        """All or nothing: every id is checked before any run is replayed."""
        bad = []
        for run_id in run_ids:
            run = self.runs.get(run_id)
            if run is None or run.project_id != who.project_id or run.status not in REPLAYABLE:
                bad.append(run_id)
        if bad and self.settings.variant.bulk_replay_partial:
            return [self._replay(self.runs[r]) for r in run_ids if r not in bad]
        if bad:
            raise InvalidInput(
                "run_ids",
                f"not replayable (unknown, or not failed/timed_out/crashed/"
                f"system_failed): {', '.join(bad)}",
            )
        return [self._replay(self.runs[run_id]) for run_id in run_ids]

    def dlq_replay(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status is not S.DEAD_LETTER:
            raise Conflict(f"run is not in dead_letter (it is {self._wire(run.status)})")
        self._dlq_replay(run)
        return run

    def _dlq_replay(self, run: Run) -> None:
        now = self.engine.now()
        run.attempt = 1
        run.error = None
        run.finished_ms = None
        run.next_retry_ms = None
        run.eligible_ms = now
        self._move(run, S.QUEUED, now)
        self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)

    def bulk_dlq_replay(
        self, who: ApiKey, *, run_ids: list[str] | None, project_id: str | None
    ) -> list[Run]:
        if (run_ids is None) == (project_id is None):
            raise InvalidInput("", "give exactly one of run_ids and project_id")
        if project_id is not None:
            runs = self.dead_letters(who, project_id)
        else:
            runs = [self.get_run(who, run_id) for run_id in run_ids or []]
            waiting = [r.id for r in runs if r.status is not S.DEAD_LETTER]
            if waiting and self.settings.variant.bulk_dlq_mixed_400:
                raise InvalidInput("run_ids", f"not in dead_letter: {', '.join(waiting)}")
            if waiting:
                raise Conflict(f"not in dead_letter: {', '.join(waiting)}")
        for run in runs:
            self._dlq_replay(run)
        return runs

    def set_debug(self, who: ApiKey, run_id: str, enabled: bool) -> Run:
        run = self.get_run(who, run_id)
        run.debug_mode = enabled
        self.engine.notify(run.id)
        return run

    def reset_idempotency_key(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status in KEY_BUSY:
            raise Conflict(f"cannot reset the idempotency key of a {run.status.value} run")
        if run.idempotency_key is not None:
            self._idempotency.pop((run.project_id, run.job_id, run.idempotency_key), None)
        run.idempotency_key = None
        return run

    def reschedule(self, who: ApiKey, run_id: str, scheduled_ms: int) -> Run:
        run = self.get_run(who, run_id)
        if run.status not in (S.DELAYED, S.QUEUED):
            raise Conflict(
                f"only delayed or queued runs can be rescheduled, not {self._wire(run.status)}"
            )
        now = self.engine.now()
        run.scheduled_ms = scheduled_ms
        if scheduled_ms > now:
            if run.status is S.QUEUED:
                self._move(run, S.DELAYED, now)
            run.eligible_ms = scheduled_ms
            self._at(run, "step", scheduled_ms, self._promote)
        else:
            if run.status is S.DELAYED:
                self._move(run, S.QUEUED, now)
            run.eligible_ms = now
            self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)
        self.engine.notify(run.id)
        return run

    def pause(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status is not S.EXECUTING:
            raise Conflict(f"only executing runs can be paused, not {self._wire(run.status)}")
        now = self.engine.now()
        self._unschedule(run, "step", "timeout")
        self._move(run, S.PAUSED, now)
        self._event(run, now, "run.paused", "info", "run paused")
        return run

    def resume(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status is not S.PAUSED:
            raise Conflict(f"only paused runs can be resumed, not {self._wire(run.status)}")
        self._requeue(run, "run.resumed", {})
        return run

    def restart(self, who: ApiKey, run_id: str, machine_preset: str | None = None) -> Run:
        run = self.get_run(who, run_id)
        if run.status not in (S.EXECUTING, S.PAUSED):
            raise Conflict(
                f"only executing or paused runs can be restarted, not {self._wire(run.status)}"
            )
        self._requeue(run, "run.restarted", {"machine_preset": machine_preset})
        return run

    def _requeue(self, run: Run, event: str, data: dict[str, Any]) -> None:
        now = self.engine.now()
        self._unschedule(run, "step", "timeout")
        run.ticks_done = 0
        run.waited = False
        run.eligible_ms = now
        self._move(run, S.QUEUED, now)
        self._event(run, now, event, "info", event.replace(".", " "), data)
        self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)

    # -- running -------------------------------------------------------------------------------

    def _promote(self, run: Run, now: int) -> None:
        if run.status is S.DELAYED:
            run.eligible_ms = now
            self._move(run, S.QUEUED, now)
            self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)

    def _expire(self, run: Run, now: int) -> None:
        if run.status in (S.DELAYED, S.QUEUED):
            self._finish(run, S.EXPIRED, now, "run expired before it started")

    def _dequeue(self, run: Run, now: int) -> None:
        if run.status is not S.QUEUED:
            return
        run.dequeued_ms = now
        run.next_retry_ms = None
        if not self._skips_dequeued(run):
            self._move(run, S.DEQUEUED, now)
        self._at(run, "step", now + self.settings.step_ms, self._execute)

    def _skips_dequeued(self, run: Run) -> bool:
        """queued -> executing directly (FACTS.md's table allows it); a run that cannot start
        still shows dequeued, the only way to system_failed."""
        return (
            self.settings.variant.skip_dequeued
            and self.jobs[run.job_id].behaviour is not Behaviour.SYSTEM_FAIL
        )

    def _execute(self, run: Run, now: int) -> None:
        ready = S.QUEUED if self._skips_dequeued(run) else S.DEQUEUED
        if run.status is not ready:
            return
        job = self.jobs[run.job_id]
        if job.behaviour is Behaviour.SYSTEM_FAIL:
            self._finish(run, S.SYSTEM_FAILED, now, "no worker could be provisioned")
            return
        self._unschedule(run, "expiry")
        run.started_ms = now
        run.heartbeat_ms = now
        dequeued = run.dequeued_ms if run.dequeued_ms is not None else now
        run.trace = {
            "queue_wait_ms": max(0, dequeued - run.eligible_ms),
            "dequeue_ms": now - dequeued,
            "connect_ms": 0,
            "ttfb_ms": None,
            "transfer_ms": None,
            "total_ms": None,
            "dispatch_ms": 0,
        }
        run.ticks_done = 0
        self._move(run, S.EXECUTING, now)
        self._record_attempt(run, now)
        timeout = run.timeout_secs_override or job.timeout_secs
        self._at(run, "timeout", now + timeout * self.settings.second_ms, self._time_out)
        self._at(run, "step", now + self.settings.step_ms, self._tick)

    def _tick(self, run: Run, now: int) -> None:
        if run.status is not S.EXECUTING:
            return
        job = self.jobs[run.job_id]
        run.heartbeat_ms = now
        run.ticks_done += 1
        if run.trace is not None and run.trace["ttfb_ms"] is None and run.started_ms is not None:
            run.trace["ttfb_ms"] = now - run.started_ms
        self._chunk(run, now, f"token {run.ticks_done} ", done=False)
        if run.debug_mode:
            self._event(run, now, "debug.tick", "debug", f"tick {run.ticks_done}")
        if run.ticks_done < job.ticks:
            self._at(run, "step", now + self.settings.step_ms, self._tick)
            return
        behaviour = job.behaviour
        if behaviour is Behaviour.LONG:
            return  # nothing more happens until cancel, pause, restart or the timeout
        if behaviour is Behaviour.FATAL:
            self._finish(run, S.FAILED, now, "non-retryable error: invalid input")
        elif behaviour is Behaviour.CRASH:
            self._finish(run, S.CRASHED, now, "worker heartbeat lost")
        elif behaviour is Behaviour.FAIL and run.attempt <= job.fail_attempts:
            self._fail_attempt(run, job, now, f"attempt {run.attempt} failed")
        elif behaviour is Behaviour.WAIT and not run.waited:
            run.waited = True
            self._move(run, S.WAITING, now)
            self._at(run, "step", now + job.wait_ticks * self.settings.step_ms, self._wake)
        elif behaviour is Behaviour.SPAWN and not run.children_spawned:
            run.children_spawned = True
            self._move(run, S.WAITING, now)
            self._spawn(run, job)
        else:
            self._complete(run, job, now)

    def _wake(self, run: Run, now: int) -> None:
        if run.status is S.WAITING:
            self._move(run, S.EXECUTING, now)
            self._at(run, "step", now + self.settings.step_ms, self._tick)

    def _spawn(self, run: Run, job: Job) -> None:
        child_job = self.jobs.get(job.spawn_job or "")
        if child_job is None or job.spawn_count <= 0:
            self._at(run, "step", self.engine.now(), self._wake)
            return
        for n in range(job.spawn_count):
            opts = TriggerOptions(payload={"parent": run.id, "index": n}, batch_id=run.batch_id)
            self._create(child_job, "spawn", opts, created_by=run.created_by, parent=run)

    def _child_finished(self, child: Run, now: int) -> None:
        parent = self.runs.get(child.parent_run_id or "")
        if parent is None or parent.status is not S.WAITING or not parent.children_spawned:
            return
        if all(r.terminal for r in self.runs.values() if r.parent_run_id == parent.id):
            self._at(parent, "step", now, self._wake)

    def _fail_attempt(self, run: Run, job: Job, now: int, reason: str) -> None:
        max_attempts = run.max_attempts_override or job.max_attempts
        if run.attempt >= max_attempts:
            self._finish(run, S.DEAD_LETTER, now, f"{reason}; {max_attempts} attempts exhausted")
            return
        self._unschedule(run, "timeout")
        delay = job.backoff_secs(run.attempt) * self.settings.second_ms
        self._event(run, now, "attempt.failed", "error", reason, {"attempt": run.attempt})
        run.error = reason
        run.attempt += 1
        run.next_retry_ms = now + delay
        run.eligible_ms = now + delay
        self._move(run, S.QUEUED, now)
        self._at(run, "step", now + delay, self._dequeue)

    def _time_out(self, run: Run, now: int) -> None:
        if run.status in (S.EXECUTING, S.WAITING):
            job = self.jobs[run.job_id]
            timeout = run.timeout_secs_override or job.timeout_secs
            self._finish(run, S.TIMED_OUT, now, f"run exceeded its timeout of {timeout}s")

    def _complete(self, run: Run, job: Job, now: int) -> None:
        result = dict(job.result) or {"ok": True}
        result["attempt"] = run.attempt
        run.result = result
        run.error = None
        self.records[run.id].outputs.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "output_key": "result",
                "schema": {"type": "object"},
                "value": result,
                "created_at": iso(now),
            }
        )
        self._finish(run, S.COMPLETED, now, None)
        if job.behaviour is Behaviour.CONTINUE and run.lineage_depth < job.continue_depth:
            opts = TriggerOptions(
                payload={**run.payload, "continued_from": run.id},
                metadata=run.metadata,
                tags=run.tags,
                batch_id=run.batch_id,
            )
            self._create(job, run.triggered_by, opts, created_by=run.created_by, continues=run)

    def _finish(self, run: Run, status: RunStatus, now: int, error: str | None) -> None:
        self._unschedule(run, "step", "timeout", "expiry")
        if error is not None:
            run.error = error
        run.finished_ms = now
        run.next_retry_ms = None
        if run.trace is not None:
            run.trace["total_ms"] = now - run.created_ms
            if run.started_ms is not None:
                run.trace["transfer_ms"] = now - run.started_ms
        self._move(run, status, now)
        level = "info" if status is S.COMPLETED else "warn" if status is S.CANCELED else "error"
        self._event(run, now, f"run.{status.value}", level, error or f"run {status.value}")
        if self.records[run.id].chunks:
            self._chunk(run, now, "", done=True)
        # The chunk stream ends with the run even when it recorded no chunk.
        self.engine.notify(chunks_key(run.id))
        if run.parent_run_id is not None:
            self._child_finished(run, now)

    # -- records -------------------------------------------------------------------------------

    def _record_attempt(self, run: Run, now: int) -> None:
        records = self.records[run.id]
        n = run.attempt
        self._event(run, now, "attempt.started", "info", f"attempt {n} started", {"attempt": n})
        records.checkpoints.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "sequence": len(records.checkpoints) + 1,
                "source": "sdk",
                "state": {"attempt": n, "step": "started"},
                "created_at": iso(now),
            }
        )
        records.tool_calls.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "tool_name": "fetch_context",
                "input": {"attempt": n},
                "output": {"documents": 2},
                "duration_ms": self.settings.step_ms,
                "status": "success",
                "created_at": iso(now),
            }
        )
        records.usage.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "provider": "openai",
                "model": "gpt-4o-mini",
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "total_tokens": 150,
                "cost_microusd": 45,
                "created_at": iso(now),
            }
        )

    def _event(
        self,
        run: Run,
        now: int,
        type: str,
        level: str,
        message: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        event = {
            "id": uuid7(now),
            "run_id": run.id,
            "type": type,
            "level": level,
            "message": message,
            "data": dict(data or {}),
            "created_at": iso(now),
        }
        self.records[run.id].events.append(event)
        self.streams.append(run.id, {"type": "event", "run_id": run.id, "event": event}, now)
        self.engine.notify(run.id)

    def _chunk(self, run: Run, now: int, text: str, *, done: bool) -> None:
        self.records[run.id].chunks += 1
        frame = {"type": "stream_chunk", "chunk": text, "stream_id": f"llm-{run.attempt}"}
        if self.settings.variant.unknown_frames:
            self.streams.append(chunks_key(run.id), {"type": "x_token_usage", "tokens": 1}, now)
        run.last_chunk = self.streams.append(chunks_key(run.id), {**frame, "done": done}, now)
        self.engine.notify(chunks_key(run.id))

    # -- plumbing ------------------------------------------------------------------------------

    def _move(self, run: Run, target: RunStatus, now: int) -> None:
        before = run.status
        TRANSITIONS.check(run.id, before, target, f"move to {target.value}")
        run.status = target
        if self._wire(before) != self._wire(target):
            change = {
                "type": "status_change",
                "run_id": run.id,
                "from": self._wire(before),
                "to": self._wire(target),
                "timestamp": iso(now),
            }
            if self.settings.variant.unknown_frames:
                probe = {"type": "x_queue_position", "run_id": run.id, "position": 0}
                self.streams.append(run.id, probe, now)
            run.last_change = self.streams.append(run.id, change, now)
        self.engine.notify(run.id)

    def _at(self, run: Run, slot: str, due_ms: int, action: Callable[[Run, int], None]) -> None:
        self._unschedule(run, slot)
        call = Call(self, "_fire", (run.id, slot, action.__name__))
        self._timers[(run.id, slot)] = self.engine.scheduler.at(due_ms, call)

    def _fire(self, run_id: str, slot: str, action: str, now: int) -> None:
        self._timers.pop((run_id, slot), None)
        current = self.runs.get(run_id)
        if current is not None:
            getattr(self, action)(current, now)

    def _unschedule(self, run: Run, *slots: str) -> None:
        for slot in slots:
            timer = self._timers.pop((run.id, slot), None)
            if timer is not None:
                timer.cancel()

    # -- forcing (control routes) --------------------------------------------------------------

    def all_runs(self) -> list[Run]:
        return sorted(self.runs.values(), key=lambda r: -r.created_ms)

    def force(self, run_id: str, outcome: str, reason: str | None = None) -> Run:
        """Drive a live run to an outcome now, as /_mock/strait/runs/{id}/outcome asks.

        The run walks the table's own edges (queued -> dequeued -> executing -> the outcome), so
        its stream shows every status a real run would pass through."""
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound("run", run_id)
        target = FORCED_OUTCOMES.get(outcome)
        if target is None:
            names = ", ".join(FORCED_OUTCOMES)
            raise InvalidInput("outcome", f"outcome must be one of {names}")
        if run.terminal:
            raise RunTerminal(run, outcome)
        if target is S.WAITING and run.status in (S.WAITING, S.PAUSED):
            raise IllegalTransition("run", run.id, self._wire(run.status), outcome)
        now = self.engine.now()
        job = self.jobs[run.job_id]
        self._unschedule(run, "step", "expiry")
        if run.status is S.PAUSED:
            self._move(run, S.QUEUED, now)
        if run.status is S.DELAYED:
            run.eligible_ms = now
            self._move(run, S.QUEUED, now)
        if run.status is S.QUEUED:
            run.dequeued_ms = now
            run.next_retry_ms = None
            self._move(run, S.DEQUEUED, now)
        if run.status is S.DEQUEUED:
            run.started_ms = run.heartbeat_ms = now
            self._move(run, S.EXECUTING, now)
            self._record_attempt(run, now)
        if run.status is S.WAITING and not TRANSITIONS.allowed(S.WAITING, target):
            self._move(run, S.EXECUTING, now)
        if target is S.COMPLETED:
            self._complete(run, job, now)
        elif target is S.WAITING:
            # Stays waiting until another forced outcome, a cancel or its timeout.
            self._move(run, S.WAITING, now)
        else:
            self._finish(run, target, now, reason or FORCED_ERRORS[target])
        return run


# What /_mock/strait/runs/{id}/outcome can do to a run that is not yet terminal.
FORCED_OUTCOMES: Mapping[str, RunStatus] = {
    "complete": S.COMPLETED,
    "fail": S.FAILED,
    "timeout": S.TIMED_OUT,
    "crash": S.CRASHED,
    "dead_letter": S.DEAD_LETTER,
    "wait": S.WAITING,
}
FORCED_ERRORS: Mapping[RunStatus, str] = {
    S.FAILED: "forced failure",
    S.TIMED_OUT: "run exceeded its timeout (forced)",
    S.CRASHED: "worker heartbeat lost (forced)",
    S.DEAD_LETTER: "attempts exhausted (forced)",
}


def chunks_key(run_id: str) -> str:
    return f"{run_id}:chunks"


def run_record(run: Run, job: Job | None, variant: StraitVariant | None = None) -> dict[str, Any]:
    """The run as every route renders it: each documented field, null when it does not apply
    (or, with the variant's switches, left out, and with fields no document names)."""
    variant = variant or StraitVariant()
    record = _documented_record(run, job, variant)
    if variant.omit_nulls:
        record = {k: v for k, v in record.items() if v is not None}
    if variant.extra_fields:
        stamps = [run.created_ms, run.started_ms, run.heartbeat_ms, run.finished_ms]
        record["updated_at"] = iso(max(s for s in stamps if s is not None))
        record["x_region"] = "eu-west-1"
    return record


def _documented_record(run: Run, job: Job | None, variant: StraitVariant) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_id": run.job_id,
        "project_id": run.project_id,
        "status": wire_status(run.status, variant.paused_status),
        "attempt": run.attempt,
        "payload": run.payload,
        "result": run.result,
        "metadata": run.metadata,
        "error": run.error,
        "triggered_by": run.triggered_by,
        "scheduled_at": iso(run.scheduled_ms),
        "started_at": iso(run.started_ms),
        "finished_at": iso(run.finished_ms),
        "heartbeat_at": iso(run.heartbeat_ms),
        "next_retry_at": iso(run.next_retry_ms),
        "expires_at": iso(run.expires_ms),
        "parent_run_id": run.parent_run_id,
        "priority": run.priority,
        "idempotency_key": run.idempotency_key,
        "job_version": run.job_version,
        "workflow_step_run_id": None,
        "max_attempts_override": run.max_attempts_override,
        "timeout_secs_override": run.timeout_secs_override,
        "retry_backoff": job.retry_backoff if job else "exponential",
        "retry_initial_delay_secs": job.retry_initial_delay_secs if job else 0,
        "retry_max_delay_secs": job.retry_max_delay_secs if job else 0,
        "execution_trace": dict(run.trace) if run.trace is not None else None,
        "debug_mode": run.debug_mode,
        "continuation_of": run.continuation_of,
        "lineage_depth": run.lineage_depth,
        "tags": run.tags,
        "job_version_id": f"{run.job_id}@v{run.job_version}",
        "created_by": run.created_by,
        "batch_id": run.batch_id,
        "concurrency_key": run.concurrency_key,
        "created_at": iso(run.created_ms),
    }


def bulk_record(items: list[BulkItem]) -> dict[str, Any]:
    canceled = sum(1 for i in items if i.error is None)
    results = []
    for item in items:
        entry = {"id": item.id, "status": item.status}
        if item.error is not None:
            entry["error"] = item.error
        results.append(entry)
    return {
        "results": results,
        "total": len(items),
        "canceled": canceled,
        "failed": len(items) - canceled,
    }
