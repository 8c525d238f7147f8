"""AUVY: what a caller can do to a job: cancel, resume, give it input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import IllegalTransition, InvalidInput
from .lifecycle import ACTIONS, CANCELLED_REASON, TRANSITIONS
from .reading import JobQueries
from .records import Job, Principal
from .responding import Responses


class JobControl(Responses, JobQueries):
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

    def _check_action(self, job: Job, action: str) -> None:
        sources, target = ACTIONS[action]
        if job.status not in sources:
            raise IllegalTransition("job", job.id, job.status.value, action)
        TRANSITIONS.check(job.id, job.status, target, action)
