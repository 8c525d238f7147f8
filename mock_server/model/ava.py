"""AVA: tenants, workers with known behaviour, and the prioritised queue their jobs wait in.

A job is queued until it is eligible (its `scheduled_at` has passed) and a slot is free: each
tenant runs at most `max_concurrent` jobs at once, and the next one is taken from a heap keyed by
(priority, sequence), so priority 1 leaves first and equal priorities leave in the order they
became eligible. A running job follows its worker's script (`Log`, `Work`, then `Complete` or
`Fail`) on the engine's clock; every line it writes is kept in the job's log. Finishing frees the
slot, and a completed or failed job is published to the webhook outbox.

Cancel works from queued and running only. A running job's handler gets SIGTERM (written to its
log) and the job ends cancelled at once; any other status is an `IllegalTransition`, which the
HTTP layer renders as 409 resource_conflict.
"""

from __future__ import annotations

import heapq
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from ..clock import iso
from ..variants.ava import AvaVariant
from .engine import Engine
from .errors import Forbidden, IllegalTransition, InvalidInput, NotFound, Unauthenticated
from .outbox import Outbox
from .scheduler import Call
from .script import Complete, Fail, ScriptError
from .status import TransitionTable
from .store import MemoryRecords, RecordStore, in_partition


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


Q, R, C, F, X = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)

TRANSITIONS: TransitionTable[JobStatus] = TransitionTable(
    "job",
    {
        Q: {R, X},
        R: {C, F, X},
        C: set(),
        F: set(),
        X: set(),
    },
)

# "Only queued or running jobs can be cancelled": exactly the statuses with an edge to cancelled.
CANCELLABLE = frozenset(s for s in TRANSITIONS.statuses() if TRANSITIONS.allowed(s, X))

# Lowest to highest. The document names only tenant-system-admin; FACTS.md says writes need it
# "or higher", so the order around it is ours (and openapi/ava.yaml's).
ROLES: tuple[str, ...] = (
    "tenant-viewer",
    "tenant-member",
    "tenant-admin",
    "tenant-system-admin",
    "platform-admin",
    "platform-super-admin",
)
WRITE_ROLE = "tenant-system-admin"

TRIGGERS: tuple[str, ...] = ("manual", "scheduled", "webhook", "event")
LogLevel = Literal["info", "warn", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = ("info", "warn", "error")
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 1, 10, 5
MAX_LOG_LIMIT = 500

# What /_mock/ava/jobs/{id}/outcome can do to a queued or running job.
FORCED_OUTCOMES: tuple[str, ...] = ("complete", "fail", "timeout")

COMPLETED_EVENT = "ava.job.completed"
FAILED_EVENT = "ava.job.failed"
# Not in the document: only the webhook_extra_events variant sends these.
STARTED_EVENT = "ava.job.started"
CANCELLED_EVENT = "ava.job.cancelled"

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str, now_ms: int) -> str:
    """`<prefix>_<ulid>` in lower case, like the document's `job_01hxyz...`: time-ordered."""
    value = (now_ms & (2**48 - 1)) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


# -- what a worker does --------------------------------------------------------------------------


@dataclass(frozen=True)
class Log:
    """Write `repeat` lines at once; `{n}` in msg becomes the line's 1-based number."""

    level: LogLevel
    msg: str
    repeat: int = 1


@dataclass(frozen=True)
class Work:
    """Keep the handler busy for `ticks` of the worker's pacing."""

    ticks: int


Step = Log | Work | Complete | Fail


def parse_worker_script(raw: object, where: str) -> tuple[Step, ...]:
    """Build a worker's steps from seed data; errors name the worker, so a bad world fails at
    start-up rather than at the first job."""
    if not isinstance(raw, list):
        raise ScriptError(f"{where}: script must be a list of tables")
    steps: list[Step] = []
    for i, item in enumerate(raw):
        here = f"{where} step {i + 1}"
        if not isinstance(item, Mapping):
            raise ScriptError(f"{here}: a step must be a table")
        if "log" in item:
            level, msg, repeat = item["log"], item.get("msg"), item.get("repeat", 1)
            if level not in LOG_LEVELS:
                raise ScriptError(f"{here}: log must be one of {', '.join(LOG_LEVELS)}")
            if not isinstance(msg, str):
                raise ScriptError(f"{here}: a log step needs a msg string")
            if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
                raise ScriptError(f"{here}: repeat must be a positive integer")
            steps.append(Log(level, msg, repeat))
        elif "work" in item:
            ticks = item["work"]
            if isinstance(ticks, bool) or not isinstance(ticks, int) or ticks < 0:
                raise ScriptError(f"{here}: work must be a non-negative integer (ticks)")
            steps.append(Work(ticks))
        elif "fail" in item:
            steps.append(Fail(str(item["fail"])))
        elif "complete" in item:
            output = item["complete"]
            if not isinstance(output, Mapping):
                raise ScriptError(f"{here}: complete takes a table (the job's output)")
            steps.append(Complete(dict(output)))
        else:
            raise ScriptError(f"{here}: unknown step {sorted(item)}")
    return tuple(steps)


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    max_concurrent: int | None = None  # None: the settings' default
    suspended: bool = False


@dataclass(frozen=True)
class Worker:
    id: str
    tenant_id: str
    name: str
    script: tuple[Step, ...]
    step_ms: int | None = None


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    user_id: str
    role: str

    @property
    def can_write(self) -> bool:
        return ROLES.index(self.role) >= ROLES.index(WRITE_ROLE)


@dataclass(frozen=True)
class LogLine:
    ts_ms: int
    level: LogLevel
    msg: str


@dataclass
class Job:
    id: str
    seq: int
    worker_id: str
    tenant_id: str
    trigger: str
    priority: int
    input: dict[str, Any]
    triggered_by: str
    created_ms: int
    scheduled_ms: int | None = None
    status: JobStatus = JobStatus.QUEUED
    started_ms: int | None = None
    completed_ms: int | None = None
    output: Any = None
    error: str | None = None
    pc: int = 0

    @property
    def terminal(self) -> bool:
        return TRANSITIONS.is_terminal(self.status)

    @property
    def duration_ms(self) -> int | None:
        if self.started_ms is None or self.completed_ms is None:
            return None
        return self.completed_ms - self.started_ms


def tenant_of(job: Job) -> str:
    """The partition of AVA's jobs (see `model.store.in_partition`)."""
    return job.tenant_id


@dataclass(frozen=True)
class Settings:
    step_ms: int = 250
    start_delay_ms: int = 0
    max_concurrent: int = 2
    # The other allowed answers this server gives, where the documents leave a choice open.
    variant: AvaVariant = field(default_factory=AvaVariant)


@dataclass
class TenantQueue:
    """One tenant's eligible jobs, the ones holding a slot, and its counters. Everything a job's
    creation or dispatch changes besides the job is here, per tenant: a store shared by several
    processes then lets two tenants' writes commit side by side (see store/shared.py)."""

    heap: list[tuple[int, int, str]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    # Jobs created (a job's `seq`, the list order's tie-break) and jobs that became eligible
    # (FIFO among equal priorities).
    created: int = 0
    eligible: int = 0


class AvaModel:
    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        jobs: RecordStore[Job] | None = None,
        logs: RecordStore[list[LogLine]] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or Settings()
        self.jobs: RecordStore[Job] = jobs if jobs is not None else MemoryRecords()
        self.logs: RecordStore[list[LogLine]] = logs if logs is not None else MemoryRecords()
        self.outbox = outbox if outbox is not None else Outbox(engine)
        self.secret: str | None = None
        self.tenants: dict[str, Tenant] = {}
        self.workers: dict[str, Worker] = {}
        self.queues: RecordStore[TenantQueue] = MemoryRecords()

    # -- world ---------------------------------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.id] = tenant

    def add_worker(self, worker: Worker) -> None:
        if worker.tenant_id not in self.tenants:
            raise ValueError(f"worker {worker.id} belongs to unknown tenant {worker.tenant_id}")
        self.workers[worker.id] = worker

    def reset_jobs(self) -> None:
        self.engine.scheduler.cancel_kind("ava")
        self.queues.clear()
        self.jobs.clear()
        self.logs.clear()
        self.outbox.clear()

    def clear_world(self) -> None:
        self.reset_jobs()
        self.tenants.clear()
        self.workers.clear()
        self.secret = None

    # -- callers -------------------------------------------------------------------------------

    def authenticate(
        self,
        secret: str | None,
        tenant_id: str | None,
        user_id: str | None,
        role: str | None,
    ) -> Caller:
        """The secret, then who is calling: missing identity is 401, a role we do not know 403."""
        if self.secret is None or not hmac.compare_digest(
            (secret or "").encode(), self.secret.encode()
        ):
            raise Unauthenticated("a valid x-internal-secret header is required")
        # FACTS.md lists unauthorized 401 and forbidden 403; which one a caller without an
        # identity gets is open (the reference: 401, the variant: 403).
        refuse = (
            Forbidden if self.settings.variant.missing_identity_status == 403 else Unauthenticated
        )
        if not tenant_id:
            raise refuse("the x-tenant-id header is required")
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            raise refuse("x-tenant-id does not name a known tenant")
        if not user_id:
            raise refuse("the x-user-id header is required")
        if not role:
            if self.settings.variant.missing_role_status == 401:
                raise Unauthenticated("the x-platform-role header is required")
            raise Forbidden("the x-platform-role header is required")
        if role not in ROLES:
            raise Forbidden("x-platform-role is not a known role")
        return Caller(tenant, user_id, role)

    @staticmethod
    def _require_write(who: Caller) -> None:
        if not who.can_write:
            raise Forbidden(f"this action needs the role {WRITE_ROLE} or higher, not {who.role}")
        if who.tenant.suspended:
            raise Forbidden("the tenant is suspended", "tenant_suspended")

    # -- triggering ----------------------------------------------------------------------------

    def trigger(
        self,
        who: Caller,
        worker_id: str,
        *,
        input: Mapping[str, Any] | None = None,
        trigger: str = "manual",
        priority: int = DEFAULT_PRIORITY,
        scheduled_ms: int | None = None,
    ) -> Job:
        self._require_write(who)
        # The HTTP layer validates these from the spec; the model holds its own line as well.
        if isinstance(priority, bool) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidInput("priority", f"priority must be {MIN_PRIORITY} to {MAX_PRIORITY}")
        if trigger not in TRIGGERS:
            raise InvalidInput("trigger", f"trigger must be one of {', '.join(TRIGGERS)}")
        worker = self.workers.get(worker_id)
        if worker is None or worker.tenant_id != who.tenant.id:
            if self.settings.variant.unknown_worker == "validation":
                raise InvalidInput("worker_id", "worker_id does not name a worker of this tenant")
            raise NotFound("worker", worker_id)
        now = self.engine.now()
        queue = self._queue(who.tenant.id)
        queue.created += 1
        job = Job(
            id=new_id("job", now),
            seq=queue.created,
            worker_id=worker.id,
            tenant_id=who.tenant.id,
            trigger=trigger,
            priority=int(priority),
            input=dict(input or {}),
            triggered_by=who.user_id,
            created_ms=now,
            scheduled_ms=scheduled_ms,
        )
        self.jobs.save(job.id, job)
        self.logs.save(job.id, [])
        # Never inline: the caller gets the record as queued, and execution happens afterwards.
        if scheduled_ms is not None and scheduled_ms > now:
            self._at(job, max(now + self.settings.start_delay_ms, scheduled_ms), self._enqueue)
        else:
            # A queued job competes by priority from the moment it is queued: were it to join the
            # queue only after the start delay, a slot freed meanwhile would go to a job of lower
            # priority that joined earlier (seen with slow pacing).
            self._join(job)
            self._at(job, now + self.settings.start_delay_ms, self._dispatch_job)
        self.engine.notify(job.id)
        return job

    # -- reading -------------------------------------------------------------------------------

    def get_job(self, who: Caller, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        # Another tenant's job is indistinguishable from a missing one: no existence leak.
        if job is None or job.tenant_id != who.tenant.id:
            if job is not None and self.settings.variant.other_tenant_status == 403:
                raise Forbidden("this job belongs to another tenant")
            raise NotFound("job", job_id)
        return job

    def list_jobs(
        self,
        who: Caller,
        *,
        worker_id: str | None = None,
        status: JobStatus | None = None,
        trigger: str | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
    ) -> list[Job]:
        variant = self.settings.variant
        # The variant's exclusive bounds leave out a job created exactly at a bound.
        edge = 1 if variant.exclusive_bounds else 0
        found = [
            j
            for j in in_partition(self.jobs, who.tenant.id, tenant_of)
            if (worker_id is None or j.worker_id == worker_id)
            and (status is None or j.status is status)
            and (trigger is None or j.trigger == trigger)
            and (created_after_ms is None or j.created_ms >= created_after_ms + edge)
            and (created_before_ms is None or j.created_ms <= created_before_ms - edge)
        ]
        found.sort(key=lambda j: (j.created_ms, j.seq), reverse=variant.list_order == "newest")
        return found

    def job_logs(
        self, who: Caller, job_id: str, *, level: str | None = None, limit: int = 100
    ) -> tuple[Job, list[LogLine]]:
        job = self.get_job(who, job_id)
        if not 1 <= limit <= MAX_LOG_LIMIT:
            raise InvalidInput("limit", f"limit must be 1 to {MAX_LOG_LIMIT}")
        lines = [ln for ln in self.logs.get(job.id) or [] if self._level_matches(ln, level)]
        return job, lines[:limit]

    def _level_matches(self, line: LogLine, level: str | None) -> bool:
        if level is None:
            return True
        if self.settings.variant.log_level_at_least and level in LOG_LEVELS:
            return LOG_LEVELS.index(line.level) >= LOG_LEVELS.index(level)
        return line.level == level

    # -- cancelling ----------------------------------------------------------------------------

    def cancel(self, who: Caller, job_id: str) -> Job:
        self._require_write(who)
        job = self.get_job(who, job_id)
        if job.status not in CANCELLABLE:
            raise IllegalTransition("job", job.id, job.status.value, "cancel")
        now = self.engine.now()
        self._unschedule(job)
        if job.status is JobStatus.QUEUED:
            self._write(job, now, "warn", "Job cancelled before it started")
        else:
            self._write(job, now, "warn", "Cancel requested: SIGTERM sent to the worker process")
            self._write(job, now, "info", "Handler exited after SIGTERM")
        self._end(job, JobStatus.CANCELLED, now)
        return job

    # -- running -------------------------------------------------------------------------------

    def _limit(self, tenant_id: str) -> int:
        tenant = self.tenants.get(tenant_id)
        own = tenant.max_concurrent if tenant is not None else None
        return own if own is not None else self.settings.max_concurrent

    def _queue(self, tenant_id: str) -> TenantQueue:
        queue = self.queues.get(tenant_id)
        if queue is None:
            queue = TenantQueue()
            self.queues.save(tenant_id, queue)
        return queue

    def _enqueue(self, job_id: str, now: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.QUEUED:
            return
        self._join(job)
        self._dispatch(job.tenant_id, now)

    def _join(self, job: Job) -> None:
        # The sequence is taken when the job becomes eligible: FIFO among equal priorities is
        # the order jobs joined the queue, which for a scheduled job is its scheduled time.
        queue = self._queue(job.tenant_id)
        queue.eligible += 1
        heapq.heappush(queue.heap, (job.priority, queue.eligible, job.id))

    def _dispatch_job(self, job_id: str, now: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None:
            self._dispatch(job.tenant_id, now)

    def _dispatch(self, tenant_id: str, now: int) -> None:
        queue = self._queue(tenant_id)
        limit = self._limit(tenant_id)
        while len(queue.running) < limit and queue.heap:
            _, _, job_id = heapq.heappop(queue.heap)
            job = self.jobs.get(job_id)
            if job is None or job.status is not JobStatus.QUEUED:
                continue  # cancelled while it waited: its entry is dropped here, lazily
            self._start(job, now)

    def _start(self, job: Job, now: int) -> None:
        self._move(job, JobStatus.RUNNING)
        job.started_ms = now
        self._queue(job.tenant_id).running.add(job.id)
        self._write(job, now, "info", "Worker handler started")
        self._save(job)
        self._announce_extra(STARTED_EVENT, job, now)
        # A timer, not a call: finishing starts the next job, which must not recurse.
        self._at(job, now, self._advance)

    def _advance(self, job_id: str, now: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.RUNNING:
            return
        worker = self.workers.get(job.worker_id)
        script = worker.script if worker is not None else ()
        step_ms = self.settings.step_ms
        if worker is not None and worker.step_ms is not None:
            step_ms = worker.step_ms
        while job.pc < len(script):
            step = script[job.pc]
            job.pc += 1
            if isinstance(step, Log):
                for n in range(1, step.repeat + 1):
                    self._write(job, now, step.level, step.msg.replace("{n}", str(n)))
            elif isinstance(step, Work):
                self._save(job)
                self._at(job, now + step.ticks * step_ms, self._advance)
                return
            elif isinstance(step, Fail):
                self._write(job, now, "error", f"Handler failed: {step.reason}")
                job.error = step.reason
                self._end(job, JobStatus.FAILED, now)
                return
            else:
                self._complete(job, dict(step.result), now)
                return
        self._complete(job, None, now)

    def _complete(self, job: Job, output: Any, now: int) -> None:
        job.output = output
        started = job.started_ms if job.started_ms is not None else now
        self._write(job, now, "info", f"Handler completed in {now - started}ms")
        self._end(job, JobStatus.COMPLETED, now)

    def _end(self, job: Job, status: JobStatus, now: int) -> None:
        self._move(job, status)
        job.completed_ms = now
        self._save(job)
        queue = self._queue(job.tenant_id)
        if job.id in queue.running:
            queue.running.discard(job.id)
            self._dispatch(job.tenant_id, now)
        variant = self.settings.variant
        event = {JobStatus.COMPLETED: COMPLETED_EVENT, JobStatus.FAILED: FAILED_EVENT}.get(status)
        if event is not None:
            record = job_record(job, variant)
            self.outbox.publish(event, job.id, record, now, shape=variant.webhook_shape)
        elif status is JobStatus.CANCELLED:
            self._announce_extra(CANCELLED_EVENT, job, now)

    def _announce_extra(self, event: str, job: Job, now: int) -> None:
        """An event the document does not name, sent only by the variant that proves receivers
        (the suite's included) ignore what they did not subscribe to."""
        variant = self.settings.variant
        if variant.webhook_extra_events:
            record = job_record(job, variant)
            self.outbox.publish(event, job.id, record, now, shape=variant.webhook_shape)

    def _write(self, job: Job, now: int, level: LogLevel, msg: str) -> None:
        lines = self.logs.get(job.id)
        if lines is None:
            lines = []
        lines.append(LogLine(now, level, msg))
        self.logs.save(job.id, lines)

    def _move(self, job: Job, target: JobStatus) -> None:
        TRANSITIONS.check(job.id, job.status, target, f"move to {target.value}")
        job.status = target

    def _save(self, job: Job) -> None:
        self.jobs.save(job.id, job)
        self.engine.notify(job.id)

    def _at(self, job: Job, due_ms: int, action: Callable[[str, int], None]) -> None:
        self._unschedule(job)
        call = Call(self, "_fire", (job.id, action.__name__))
        self.engine.scheduler.at(due_ms, call, ("ava", job.id))

    def _fire(self, job_id: str, action: str, now: int) -> None:
        self.engine.scheduler.release(("ava", job_id))
        getattr(self, action)(job_id, now)

    def _unschedule(self, job: Job) -> None:
        self.engine.scheduler.cancel(("ava", job.id))

    # -- forcing outcomes (control routes) -----------------------------------------------------

    def force(self, job_id: str, outcome: str, reason: str | None = None) -> Job:
        """End a queued or running job now, as the /_mock/ control route asks."""
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("job", job_id)
        if outcome not in FORCED_OUTCOMES:
            raise InvalidInput("outcome", f"outcome must be one of {', '.join(FORCED_OUTCOMES)}")
        if job.terminal:
            raise IllegalTransition("job", job.id, job.status.value, outcome)
        now = self.engine.now()
        self._unschedule(job)
        if job.status is JobStatus.QUEUED:
            # Through running, as a worker would: started_at and duration stay meaningful.
            self._move(job, JobStatus.RUNNING)
            job.started_ms = now
            self._queue(job.tenant_id).running.add(job.id)
            self._write(job, now, "info", "Worker handler started")
        if outcome == "complete":
            self._complete(job, {"forced": True}, now)
        elif outcome == "timeout":
            # AVA has no timed-out status: a handler that overruns fails with this error.
            job.error = reason or "handler timed out"
            self._write(job, now, "error", f"Handler timed out: {job.error}")
            self._end(job, JobStatus.FAILED, now)
        else:
            job.error = reason or "forced failure"
            self._write(job, now, "error", f"Handler failed: {job.error}")
            self._end(job, JobStatus.FAILED, now)
        return job

    def running(self, tenant_id: str) -> frozenset[str]:
        return frozenset(self._queue(tenant_id).running)


def job_record(job: Job, variant: AvaVariant | None = None) -> dict[str, Any]:
    """The job as the API and its webhooks render it: every field, always present."""
    record = {
        "id": job.id,
        "worker_id": job.worker_id,
        "tenant_id": job.tenant_id,
        "status": job.status.value,
        "trigger": job.trigger,
        "priority": job.priority,
        "input": job.input,
        "triggered_by": job.triggered_by,
        "created_at": iso(job.created_ms),
        "scheduled_at": iso(job.scheduled_ms),
        "started_at": iso(job.started_ms),
        "completed_at": iso(job.completed_ms),
        "duration_ms": job.duration_ms,
        "output": job.output if job.status is JobStatus.COMPLETED else None,
        "error": job.error if job.status is JobStatus.FAILED else None,
    }
    if variant is None:
        return record
    if job.status is JobStatus.CANCELLED and not variant.cancelled_completed_at:
        # Only the statuses are documented: this variant leaves a cancelled job unfinished in time.
        record["completed_at"] = None
        record["duration_ms"] = None
    if variant.extra_fields:
        record["updated_at"] = iso(job.completed_ms or job.started_ms or job.created_ms)
        record["x_vendor"] = {"queue": "default", "attempt": 1}
    return record


def log_record(line: LogLine) -> dict[str, Any]:
    return {"ts": iso(line.ts_ms), "level": line.level, "msg": line.msg}
