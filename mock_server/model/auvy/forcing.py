"""AUVY: forcing a job's outcome, as the /_mock/ control routes and the inspector do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..errors import IllegalTransition, InvalidInput, NotFound
from ..script import Complete, Field, Question, Wait
from .lifecycle import TIMEOUT_REASON, JobStatus
from .records import Job
from .running import JobRunner

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


class Forcing(JobRunner):
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
