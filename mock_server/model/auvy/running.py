"""AUVY: running a job's script on the engine's clock, one step per tick of its pacing.

The job's one timer is data: `Call(model, "_tick", (job id,))`, filed in the scheduler under
`("auvy", job id)`. Every change is saved through the
store and appended to the job's event stream (`token`, `state_update`, then a terminal
`complete` or `error`)."""

from __future__ import annotations

import uuid
from typing import Any

from ..scheduler import Call
from ..script import Complete, Fail, Pause, Progress, Step, Wait
from .lifecycle import TRANSITIONS, JobStatus
from .records import Intervention, InterventionStatus, Job
from .streams import JobStreams


class JobRunner(JobStreams):
    def _schedule(self, job: Job, due_ms: int) -> None:
        job_id = job.id
        self.engine.scheduler.at(due_ms, Call(self, "_tick", (job_id,)), ("auvy", job_id))

    def _unschedule(self, job: Job) -> None:
        self.engine.scheduler.cancel(("auvy", job.id))

    def _tick(self, job_id: str, now: int) -> None:
        self.engine.scheduler.release(("auvy", job_id))
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

    def _save(self, job: Job, now: int, *, reschedule: bool = False) -> None:
        self.jobs.save(job.id, job)
        if reschedule:
            self._schedule(job, now + job.step_ms)
        self.engine.notify(job.id)
