"""AUVY: listing interventions and answering them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput, NotFound
from ..store import in_partition
from .interventions import ACTIONS_BY_WAIT, RESPONSE_STATUS, _matches_type
from .lifecycle import REJECTED_REASON
from .records import Intervention, Job, Principal, workspace_of
from .running import JobRunner


class Responses(JobRunner):
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
            for i in in_partition(self.interventions, who.workspace.id, workspace_of)
            if (job_id is None or i.job_id == job_id)
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
