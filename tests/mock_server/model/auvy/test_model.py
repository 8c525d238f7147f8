"""The AUVY model on its own: no HTTP, a manual clock, the bundled seed world."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mock_server.clock import ManualClock
from mock_server.model.auvy import (
    ACTIONS,
    CANCELLED_REASON,
    DEFAULT_INLINE_SCRIPT,
    REJECTED_REASON,
    RESPONSE_STATUS,
    TRANSITIONS,
    AuvyModel,
    Intervention,
    Job,
    JobStatus,
    Principal,
    Settings,
)
from mock_server.model.engine import Engine
from mock_server.model.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    ModelError,
    NotFound,
    Unauthenticated,
)
from mock_server.model.store import MemoryStreams
from mock_server.profile import FIXTURES
from mock_server.seed import load_auvy

SEED = FIXTURES / "seed" / "auvy.toml"

ACME = "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01"
GLOBEX = "7b2d4e61-1c3f-4a5b-8e9d-0f1a2b3c4d02"

MAIN_KEY = "auvy_test_acme_rw"
READ_ONLY_KEY = "auvy_test_acme_ro"
OTHER_KEY = "auvy_test_globex_rw"
TRIAL_EXPIRED_KEY = "auvy_test_initech_rw"
COST_CAP_KEY = "auvy_test_umbrella_rw"

COMPLETE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
FAIL = "1c8f2a4b-3d5e-4f6a-9b0c-2d3e4f5a6b11"
APPROVAL = "2d9a3b5c-4e6f-4a7b-8c1d-3e4f5a6b7c12"
INPUT = "3e0b4c6d-5f7a-4b8c-9d2e-4f5a6b7c8d13"
QUESTIONS = "4f1c5d7e-6a8b-4c9d-8e3f-5a6b7c8d9e14"
LONG = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"
PAUSE = "6b3e7f9a-8c0d-4e1f-8a5b-7c8d9e0f1a16"
OTHER_PATHWAY = "7c4f8a0b-9d1e-4f2a-9b6c-8d9e0f1a2b17"

TRACE = "trc_acme_support_0001"
OTHER_TRACE = "trc_globex_0001"

STEP_MS = 10
START_DELAY_MS = 5
# Enough time for any seeded pathway but the long one to reach its next stop.
SETTLE_MS = 1_000


@dataclass
class Harness:
    clock: ManualClock
    engine: Engine
    model: AuvyModel

    def who(self, key: str = MAIN_KEY) -> Principal:
        return self.model.authenticate(key)

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        self.engine.run_due()

    def start(self, pathway_id: str, key: str = MAIN_KEY) -> Job:
        return self.model.start_pathway(self.who(key), pathway_id)

    def job(self, job_id: str) -> Job:
        job = self.model.jobs.get(job_id)
        assert job is not None
        return job

    def events(self, job: Job) -> list[Mapping[str, object]]:
        return [e.data for e in self.model.read_events(job, None).entries]

    def pending(self, job: Job) -> Intervention:
        intervention = self.model.waiting_for(job)
        assert intervention is not None, f"job is {job.status}, not waiting"
        return intervention

    def submit(self, job: Job, response: Mapping[str, Any], key: str = MAIN_KEY) -> Job:
        return self.model.submit_input(self.who(key), job.id, ACME, response)


def make(**overrides: Any) -> Harness:
    config: dict[str, Any] = {
        "step_ms": STEP_MS,
        "start_delay_ms": START_DELAY_MS,
        "stream_maxlen": None,
        "stream_ttl_ms": None,
    }
    config.update(overrides)
    s = Settings(**config)
    clock = ManualClock()
    engine = Engine(clock)
    model = AuvyModel(
        engine, s, streams=MemoryStreams(maxlen=s.stream_maxlen, ttl_ms=s.stream_ttl_ms)
    )
    load_auvy(model, SEED)
    return Harness(clock, engine, model)


def response(intervention: Intervention, action: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "intervention_response",
        "interventionId": intervention.id,
        "action": action,
        **extra,
    }


def snapshot(h: Harness, job_id: str) -> tuple[object, ...]:
    job = h.job(job_id)
    intervention = h.model.interventions.get(job.intervention_id or "")
    return (
        job.status,
        len(h.events(job)),
        job.progress,
        job.failed_reason,
        job.result,
        job.intervention_id,
        intervention.status if intervention else None,
    )


def refused(
    h: Harness, job_id: str, error: type[ModelError], action: Callable[[], object]
) -> ModelError:
    """Run an action that must be refused with `error` and must leave the job untouched."""
    before = snapshot(h, job_id)
    with pytest.raises(error) as info:
        action()
    assert snapshot(h, job_id) == before
    return info.value


def status_of(job: Job) -> JobStatus:
    """The job's status now (a call, so the type checker does not keep an earlier narrowing)."""
    return job.status


def status_of_intervention(intervention: Intervention) -> str:
    return intervention.status


def state_statuses(events: list[Mapping[str, object]]) -> list[str]:
    return [str(e["status"]) for e in events if e["type"] == "state_update"]


@pytest.fixture
def h() -> Harness:
    return make()


# --- starting and running --------------------------------------------------------------------


def test_a_new_job_is_pending_with_an_empty_stream(h: Harness) -> None:
    job = h.start(COMPLETE)
    assert status_of(job) is JobStatus.PENDING
    assert job.progress == 0
    assert job.kind == "pathway"
    assert job.pathway_id == COMPLETE
    assert job.workspace_id == ACME
    assert job.created_ms == h.clock.now_ms()
    assert job.processed_ms is None
    assert h.events(job) == []
    h.advance(START_DELAY_MS - 1)
    assert status_of(job) is JobStatus.PENDING
    h.advance(1)
    assert status_of(job) is JobStatus.RUNNING
    assert job.processed_ms == h.clock.now_ms()
    assert h.events(job) == [
        {
            "type": "state_update",
            "status": "running",
            "progress": 0,
            "current_step": None,
            "waitingFor": None,
        }
    ]


def test_the_complete_pathway_completes_with_its_result(h: Harness) -> None:
    job = h.start(COMPLETE)
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.progress == 100
    assert job.result == {"summary": "Revenue grew 12%.", "steps": 5}
    assert job.failed_reason is None
    assert job.current_step is None
    assert job.finished_ms is not None
    events = h.events(job)
    tokens = [e["content"] for e in events if e["type"] == "token"]
    assert tokens == ["Fetching ", "sources. ", "Revenue ", "grew ", "12%."]
    progress = [e["progress"] for e in events if e["type"] == "state_update"]
    assert progress == [0, 20, 40, 60, 80, 99, 100]
    assert events[-1] == {"type": "complete", "result": job.result}


def test_progress_steps_run_one_per_tick(h: Harness) -> None:
    job = h.start(COMPLETE)
    h.advance(START_DELAY_MS)
    h.advance(STEP_MS)
    assert job.done_units == 1
    assert job.current_step == "fetch"
    h.advance(STEP_MS * 2)
    assert job.done_units == 3
    assert job.current_step == "summarise"


def test_a_pathway_can_set_its_own_pacing(h: Harness) -> None:
    from mock_server.model.auvy import Pathway
    from mock_server.model.script import Complete, Progress

    h.model.add_pathway(
        Pathway("slow", ACME, "slow", (Progress(2), Complete({"ok": True})), step_ms=1_000)
    )
    job = h.start("slow")
    h.advance(START_DELAY_MS + 999)
    assert job.done_units == 0
    h.advance(1)
    assert job.done_units == 1


def test_a_script_that_runs_out_completes_with_an_empty_result(h: Harness) -> None:
    job = h.model.start_pathway(h.who(), None, inline={"nodes": []}, input={"a": 1})
    assert job.script == DEFAULT_INLINE_SCRIPT
    assert job.input == {"a": 1, "_inline_pathway": {"nodes": []}}
    assert job.pathway_id is None
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {}


def test_the_fail_pathway_fails_with_its_reason(h: Harness) -> None:
    job = h.start(FAIL)
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.FAILED
    assert job.failed_reason == "upstream returned 502 while importing rows"
    assert job.result is None
    assert job.finished_ms is not None
    assert h.events(job)[-1] == {
        "type": "error",
        "code": "JOB_FAILED",
        "message": "upstream returned 502 while importing rows",
    }
    assert state_statuses(h.events(job))[-1] == "failed"


# --- approval --------------------------------------------------------------------------------


def test_approval_waits_then_approve_continues_to_completion(h: Harness) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.WAITING
    intervention = h.pending(job)
    assert intervention.wait.kind == "approval"
    assert status_of_intervention(intervention) == "pending"
    assert job.current_step == "waiting for approval"
    last = h.events(job)[-1]
    assert last["type"] == "state_update"
    assert last["status"] == "waiting"
    waiting_for = last["waitingFor"]
    assert isinstance(waiting_for, dict)
    assert waiting_for["interventionId"] == intervention.id
    assert waiting_for["actions"] == ["approve", "reject"]

    h.submit(job, response(intervention, "approve", comment="ship it"))
    assert status_of(job) is JobStatus.RUNNING
    assert h.model.waiting_for(job) is None
    assert status_of_intervention(intervention) == "approved"
    assert intervention.responded_ms == h.clock.now_ms()
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {
        "published": True,
        "responses": [
            {"interventionId": intervention.id, "action": "approve", "comment": "ship it"}
        ],
    }


def test_approval_reject_fails_the_job(h: Harness) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    h.submit(job, response(intervention, "reject"))
    assert status_of(job) is JobStatus.FAILED
    assert job.failed_reason == REJECTED_REASON
    assert status_of_intervention(intervention) == "rejected"
    assert h.events(job)[-1]["code"] == "INTERVENTION_REJECTED"
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.FAILED


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ("submit_input", "input.action"),
        ("answer_questions", "input.action"),
        (None, "input.action"),
    ],
)
def test_approval_accepts_only_its_actions(h: Harness, action: str | None, field: str) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    bad = response(intervention, "approve")
    bad["action"] = action
    err = refused(h, job.id, InvalidInput, lambda: h.submit(job, bad))
    assert isinstance(err, InvalidInput)
    assert err.field == field


def test_a_stale_intervention_id_is_refused(h: Harness) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    bad = response(h.pending(job), "approve")
    bad["interventionId"] = "int_stale"
    err = refused(h, job.id, InvalidInput, lambda: h.submit(job, bad))
    assert isinstance(err, InvalidInput)
    assert err.field == "input.interventionId"


def test_workspace_id_must_be_the_callers(h: Harness) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    ok = response(h.pending(job), "approve")
    err = refused(
        h,
        job.id,
        InvalidInput,
        lambda: h.model.submit_input(h.who(), job.id, GLOBEX, ok),
    )
    assert isinstance(err, InvalidInput)
    assert err.field == "workspace_id"


# --- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "dev@example.test", "seats": 3},
        {"email": "dev@example.test", "seats": 2.5, "newsletter": False},
    ],
)
def test_input_accepts_a_valid_submission(h: Harness, fields: dict[str, Any]) -> None:
    job = h.start(INPUT)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    assert [f.name for f in intervention.wait.fields] == ["email", "seats", "newsletter"]
    h.submit(job, response(intervention, "submit_input", fields=fields))
    assert status_of(job) is JobStatus.RUNNING
    assert status_of_intervention(intervention) == "answered"
    assert intervention.response == {
        "interventionId": intervention.id,
        "action": "submit_input",
        "fields": fields,
    }
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result["account"] == "created"
    assert job.result["responses"][0]["fields"] == fields


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"seats": 3}, "input.fields.email"),
        ({}, "input.fields.email"),
        ({"email": "a@b.test"}, "input.fields.seats"),
        ({"email": "a@b.test", "seats": "3"}, "input.fields.seats"),
        ({"email": "a@b.test", "seats": True}, "input.fields.seats"),
        ({"email": 7, "seats": 3}, "input.fields.email"),
        ({"email": "a@b.test", "seats": 3, "newsletter": "yes"}, "input.fields.newsletter"),
        ({"email": "a@b.test", "seats": 3, "colour": "red"}, "input.fields.colour"),
        ("not an object", "input.fields"),
        (None, "input.fields"),
    ],
)
def test_input_refuses_missing_mistyped_and_unknown_fields(
    h: Harness, fields: object, field: str
) -> None:
    job = h.start(INPUT)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    bad = response(intervention, "submit_input")
    if fields is not None:
        bad["fields"] = fields
    err = refused(h, job.id, InvalidInput, lambda: h.submit(job, bad))
    assert isinstance(err, InvalidInput)
    assert err.field == field
    assert status_of_intervention(intervention) == "pending"


# --- questions -------------------------------------------------------------------------------


def test_questions_answered_continue_the_job(h: Harness) -> None:
    job = h.start(QUESTIONS)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    assert [q.id for q in intervention.wait.questions] == ["q1", "q2"]
    h.submit(
        job, response(intervention, "answer_questions", answers={"q1": "prod", "q2": "Monday"})
    )
    assert status_of(job) is JobStatus.RUNNING
    assert status_of_intervention(intervention) == "answered"
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result["priority"] == "p2"


def test_questions_declined_still_continue_the_job(h: Harness) -> None:
    job = h.start(QUESTIONS)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    h.submit(job, response(intervention, "decline_questions"))
    assert status_of(job) is JobStatus.RUNNING
    assert status_of_intervention(intervention) == "rejected"
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"q1": "prod"}, "input.answers.q2"),
        ({"q1": "prod", "q2": 3}, "input.answers.q2"),
        ({"q1": "prod", "q2": "now", "q3": "extra"}, "input.answers.q3"),
        ("prod", "input.answers"),
        (None, "input.answers"),
    ],
)
def test_questions_refuse_missing_and_unknown_answers(
    h: Harness, answers: object, field: str
) -> None:
    job = h.start(QUESTIONS)
    h.advance(SETTLE_MS)
    bad = response(h.pending(job), "answer_questions")
    if answers is not None:
        bad["answers"] = answers
    err = refused(h, job.id, InvalidInput, lambda: h.submit(job, bad))
    assert isinstance(err, InvalidInput)
    assert err.field == field


# --- pause, resume, cancel -------------------------------------------------------------------


def test_pause_then_resume_completes(h: Harness) -> None:
    job = h.start(PAUSE)
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.PAUSED
    assert job.current_step == "paused at human node: review"
    assert h.model.waiting_for(job) is None
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.PAUSED
    h.model.resume(h.who(), job.id)
    assert status_of(job) is JobStatus.RUNNING
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {"report": "sent"}
    assert state_statuses(h.events(job)).count("paused") == 1


def test_resume_of_a_waiting_job_cancels_its_intervention(h: Harness) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    intervention = h.pending(job)
    h.model.resume(h.who(), job.id)
    assert status_of(job) is JobStatus.RUNNING
    assert status_of_intervention(intervention) == "cancelled"
    assert intervention.response is None
    assert job.intervention_id is None
    assert h.model.waiting_for(job) is None
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {"published": True}


@pytest.mark.parametrize("pathway", [COMPLETE, APPROVAL, PAUSE, LONG])
@pytest.mark.parametrize("advance_ms", [0, 25, SETTLE_MS])
def test_cancel_fails_the_job_with_reason_cancelled(
    h: Harness, pathway: str, advance_ms: int
) -> None:
    job = h.start(pathway)
    h.advance(advance_ms)
    if job.terminal:
        refused(h, job.id, IllegalTransition, lambda: h.model.cancel(h.who(), job.id))
        return
    intervention_id = job.intervention_id
    h.model.cancel(h.who(), job.id)
    assert status_of(job) is JobStatus.FAILED
    assert job.failed_reason == CANCELLED_REASON
    assert job.finished_ms == h.clock.now_ms()
    assert job.intervention_id is None
    if intervention_id is not None:
        intervention = h.model.interventions.get(intervention_id)
        assert intervention is not None
        assert status_of_intervention(intervention) == "cancelled"
    events = h.events(job)
    assert events[-1] == {"type": "error", "code": "CANCELLED", "message": "Job cancelled"}
    count = len(events)
    h.advance(SETTLE_MS)
    assert len(h.events(job)) == count, "a cancelled job never runs again"


def test_refused_control_actions_leave_the_job_untouched(h: Harness) -> None:
    who = h.who()
    pending = h.start(COMPLETE)
    refused(h, pending.id, IllegalTransition, lambda: h.model.resume(who, pending.id))
    refused(h, pending.id, IllegalTransition, lambda: h.submit(pending, {"action": "approve"}))
    running = h.start(LONG)
    h.advance(100)
    assert status_of(running) is JobStatus.RUNNING
    refused(h, running.id, IllegalTransition, lambda: h.model.resume(who, running.id))
    refused(h, running.id, IllegalTransition, lambda: h.submit(running, {"action": "approve"}))
    h.advance(SETTLE_MS)
    assert status_of(pending) is JobStatus.COMPLETED
    for action in (h.model.cancel, h.model.resume):
        refused(h, pending.id, IllegalTransition, partial(action, who, pending.id))
    paused = h.start(PAUSE)
    h.advance(SETTLE_MS)
    refused(h, paused.id, IllegalTransition, lambda: h.submit(paused, {"action": "approve"}))
    failed = h.start(FAIL)
    h.advance(SETTLE_MS)
    refused(h, failed.id, IllegalTransition, lambda: h.model.cancel(who, failed.id))
    h.model.cancel(who, running.id)
    refused(h, running.id, IllegalTransition, lambda: h.model.cancel(who, running.id))


def test_illegal_transition_names_the_action_and_status(h: Harness) -> None:
    job = h.start(COMPLETE)
    h.advance(SETTLE_MS)
    with pytest.raises(IllegalTransition) as info:
        h.model.cancel(h.who(), job.id)
    assert info.value.current == "completed"
    assert info.value.action == "cancel"


# --- forced outcomes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pathway", "advance_ms", "status"),
    [
        (LONG, 0, JobStatus.PENDING),
        (LONG, 100, JobStatus.RUNNING),
        (APPROVAL, SETTLE_MS, JobStatus.WAITING),
        (PAUSE, SETTLE_MS, JobStatus.PAUSED),
    ],
)
def test_force_complete_from_every_live_status(
    h: Harness, pathway: str, advance_ms: int, status: JobStatus
) -> None:
    job = h.start(pathway)
    h.advance(advance_ms)
    assert job.status is status
    intervention_id = job.intervention_id
    h.model.force(job.id, "complete")
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {"forced": True}
    assert job.processed_ms is not None
    assert job.intervention_id is None
    if intervention_id is not None:
        intervention = h.model.interventions.get(intervention_id)
        assert intervention is not None
        assert status_of_intervention(intervention) == "cancelled"
    statuses = state_statuses(h.events(job))
    # The stream shows every move, through running, never a jump the table forbids.
    assert statuses[-2:] == ["running", "completed"]
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED


def test_force_fail_uses_the_reason(h: Harness) -> None:
    job = h.start(LONG)
    h.model.force(job.id, "fail", "disk full")
    assert status_of(job) is JobStatus.FAILED
    assert job.failed_reason == "disk full"
    assert h.events(job)[-1] == {"type": "error", "code": "JOB_FAILED", "message": "disk full"}
    other = h.start(LONG)
    h.model.force(other.id, "fail")
    assert other.failed_reason == "forced failure"


def test_force_refuses_terminal_jobs_unknown_jobs_and_outcomes(h: Harness) -> None:
    job = h.start(COMPLETE)
    refused(h, job.id, InvalidInput, lambda: h.model.force(job.id, "explode"))
    h.advance(SETTLE_MS)
    for outcome in ("complete", "fail"):
        refused(h, job.id, IllegalTransition, partial(h.model.force, job.id, outcome))
    with pytest.raises(NotFound):
        h.model.force("nope", "complete")


# --- who may do what -------------------------------------------------------------------------


def test_unknown_or_missing_keys_are_unauthenticated(h: Harness) -> None:
    for token in (None, "", "auvy_test_nobody"):
        with pytest.raises(Unauthenticated):
            h.model.authenticate(token)


def test_another_workspaces_job_is_not_found(h: Harness) -> None:
    job = h.start(COMPLETE)
    other = h.who(OTHER_KEY)
    assert other.workspace.id == GLOBEX
    with pytest.raises(NotFound) as info:
        h.model.get_job(other, job.id)
    assert info.value.kind == "job"
    for action in (h.model.cancel, h.model.resume):
        refused(h, job.id, NotFound, partial(action, other, job.id))
    refused(
        h,
        job.id,
        NotFound,
        lambda: h.model.submit_input(other, job.id, GLOBEX, {"action": "approve"}),
    )
    assert h.model.list_jobs(other) == ([], 0)
    with pytest.raises(NotFound):
        h.model.get_job(h.who(), "no-such-job")


def test_another_workspaces_pathway_and_trace_are_not_found(h: Harness) -> None:
    with pytest.raises(NotFound) as info:
        h.start(OTHER_PATHWAY)
    assert info.value.kind == "pathway"
    with pytest.raises(NotFound):
        h.start("00000000-0000-4000-8000-000000000000")
    with pytest.raises(NotFound) as trace_info:
        h.model.chat(h.who(), OTHER_TRACE, "hi", None)
    assert trace_info.value.kind == "trace"
    assert list(h.model.jobs.values()) == []
    # The owner can run it.
    assert h.start(OTHER_PATHWAY, OTHER_KEY).workspace_id == GLOBEX


def test_a_read_only_key_can_read_but_not_write(h: Harness) -> None:
    job = h.start(APPROVAL)
    h.advance(SETTLE_MS)
    ro = h.who(READ_ONLY_KEY)
    with pytest.raises(Forbidden) as info:
        h.model.start_pathway(ro, COMPLETE)
    assert info.value.reason == "forbidden"
    with pytest.raises(Forbidden):
        h.model.transcribe(ro, "aGVsbG8=", "audio/webm")
    with pytest.raises(Forbidden):
        h.model.chat(ro, TRACE, "hi", None)
    for action in (h.model.cancel, h.model.resume):
        err = refused(h, job.id, Forbidden, partial(action, ro, job.id))
        assert isinstance(err, Forbidden)
        assert err.reason == "forbidden"
    ok = response(h.pending(job), "approve")
    refused(h, job.id, Forbidden, lambda: h.submit(job, ok, READ_ONLY_KEY))
    assert h.model.get_job(ro, job.id) is job
    assert h.model.list_jobs(ro) == ([job], 1)


@pytest.mark.parametrize(
    ("key", "reason"), [(TRIAL_EXPIRED_KEY, "trial_expired"), (COST_CAP_KEY, "cost_cap")]
)
def test_blocked_workspaces_cannot_start_but_can_read(h: Harness, key: str, reason: str) -> None:
    who = h.who(key)
    starts: list[Callable[[], object]] = [
        lambda: h.model.start_pathway(who, COMPLETE),
        lambda: h.model.start_pathway(who, None, inline={"a": 1}),
        lambda: h.model.transcribe(who, "aGVsbG8=", "audio/webm"),
        lambda: h.model.chat(who, TRACE, "hi", None),
    ]
    for start in starts:
        with pytest.raises(Forbidden) as info:
            start()
        assert info.value.reason == reason
    assert h.model.list_jobs(who) == ([], 0)
    with pytest.raises(NotFound):
        h.model.get_job(who, "anything")


def test_a_workspace_state_can_change_at_run_time(h: Harness) -> None:
    h.model.set_workspace_state(ACME, "cost_cap")
    with pytest.raises(Forbidden) as info:
        h.start(COMPLETE)
    assert info.value.reason == "cost_cap"
    h.model.set_workspace_state(ACME, "active")
    assert h.start(COMPLETE).status is JobStatus.PENDING


# --- transcription and chat ------------------------------------------------------------------


def test_transcribe_runs_a_transcription_job(h: Harness) -> None:
    job = h.model.transcribe(h.who(), "aGVsbG8=", "audio/webm")
    assert job.kind == "transcription"
    assert job.input == {"mime_type": "audio/webm"}
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {
        "text": "[transcript of 5 bytes of audio/webm]",
        "mime_type": "audio/webm",
        "bytes": 5,
    }


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        ("not base64!", "not valid base64"),
        ("aGVsbG8", "not valid base64"),
        ("aGVs\nbG8=", "not valid base64"),
        ("", "decodes to no bytes"),
        ("AAAAAAAAAAAA", "larger than 8 bytes"),
    ],
)
def test_transcribe_refuses_bad_audio(audio: str, message: str) -> None:
    h = make(max_audio_bytes=8)
    with pytest.raises(InvalidInput) as info:
        h.model.transcribe(h.who(), audio, "audio/webm")
    assert info.value.field == "audio_base64"
    assert message in info.value.message
    assert list(h.model.jobs.values()) == []


def test_transcribe_accepts_audio_of_exactly_the_limit() -> None:
    h = make(max_audio_bytes=9)
    assert h.model.transcribe(h.who(), "AAAAAAAAAAAA", "audio/ogg").kind == "transcription"


def test_chat_replies_on_a_trace(h: Harness) -> None:
    job = h.model.chat(h.who(), TRACE, "hello there", {"trace_type": "user"})
    assert job.kind == "chat"
    assert job.trace_id == TRACE
    assert job.input == {"message": "hello there", "neuron_task_options": {"trace_type": "user"}}
    h.advance(SETTLE_MS)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == {"message": "You said: hello there"}
    tokens = [e["content"] for e in h.events(job) if e["type"] == "token"]
    assert "".join(str(t) for t in tokens) == "You said: hello there"


def test_chat_on_an_unknown_trace_is_not_found(h: Harness) -> None:
    with pytest.raises(NotFound) as info:
        h.model.chat(h.who(), "trc_nope", "hi", None)
    assert info.value.kind == "trace"


# --- listing ---------------------------------------------------------------------------------


def test_list_filters_orders_and_pages(h: Harness) -> None:
    who = h.who()
    first = h.start(COMPLETE)
    h.clock.advance(1)
    second = h.start(FAIL)
    h.clock.advance(1)
    third = h.model.start_pathway(who, COMPLETE, receptor_id="rcp_1")
    h.clock.advance(1)
    fourth = h.start(LONG)
    h.start(OTHER_PATHWAY, OTHER_KEY)
    h.advance(SETTLE_MS)

    jobs, total = h.model.list_jobs(who)
    assert total == 4
    assert jobs == [fourth, third, second, first]

    assert h.model.list_jobs(who, pathway_id=COMPLETE) == ([third, first], 2)
    assert h.model.list_jobs(who, receptor_id="rcp_1") == ([third], 1)
    assert h.model.list_jobs(who, status=JobStatus.FAILED) == ([second], 1)
    assert h.model.list_jobs(who, status=JobStatus.RUNNING) == ([fourth], 1)
    assert h.model.list_jobs(who, status=JobStatus.WAITING) == ([], 0)
    assert h.model.list_jobs(who, pathway_id=COMPLETE, status=JobStatus.COMPLETED) == (
        [third, first],
        2,
    )

    assert h.model.list_jobs(who, limit=2) == ([fourth, third], 4)
    assert h.model.list_jobs(who, limit=2, offset=2) == ([second, first], 4)
    assert h.model.list_jobs(who, limit=3, offset=3) == ([first], 4)
    assert h.model.list_jobs(who, offset=10) == ([], 4)


def test_jobs_created_in_the_same_millisecond_are_ordered_by_id(h: Harness) -> None:
    made = [h.start(COMPLETE) for _ in range(5)]
    jobs, total = h.model.list_jobs(h.who())
    assert total == 5
    assert jobs == sorted(made, key=lambda j: j.id)
    pages = [h.model.list_jobs(h.who(), limit=2, offset=o)[0] for o in (0, 2, 4)]
    assert [j for page in pages for j in page] == jobs


def test_reset_jobs_drops_jobs_and_their_timers(h: Harness) -> None:
    job = h.start(LONG)
    h.advance(50)
    h.model.reset_jobs()
    assert list(h.model.jobs.values()) == []
    assert len(h.engine.scheduler) == 0
    assert h.model.read_events(job, None).entries == ()
    h.advance(SETTLE_MS)
    assert job.done_units < 10


# --- the state machine -----------------------------------------------------------------------

STARTS = ["complete", "fail", "approval", "input", "questions", "long", "pause", "chat", "audio"]
PATHWAYS = {
    "complete": COMPLETE,
    "fail": FAIL,
    "approval": APPROVAL,
    "input": INPUT,
    "questions": QUESTIONS,
    "long": LONG,
    "pause": PAUSE,
}
SUBMISSIONS = ["valid", "other_valid", "wrong_id", "wrong_action", "missing", "mistyped", "unknown"]


def build_submission(
    intervention: Intervention | None, variant: str
) -> tuple[dict[str, Any], bool]:
    """A response to the job's pending intervention, and whether it should be accepted."""
    if intervention is None:
        return {
            "type": "intervention_response",
            "interventionId": "int_x",
            "action": "approve",
        }, False
    kind = intervention.wait.kind
    base = response(intervention, "approve")
    if variant == "wrong_id":
        base["interventionId"] = intervention.id + "x"
        base["action"] = {"approval": "approve", "input": "submit_input"}.get(
            kind, "decline_questions"
        )
        return base, False
    if variant == "wrong_action":
        base["action"] = "approve" if kind != "approval" else "submit_input"
        return base, False
    if kind == "approval":
        if variant == "valid":
            return base, True
        if variant == "other_valid":
            return response(intervention, "reject", comment="no"), True
        base.pop("action")
        return base, False
    if kind == "input":
        all_fields: dict[str, dict[str, Any]] = {
            "valid": {"email": "a@b.test", "seats": 1},
            "other_valid": {"email": "a@b.test", "seats": 1.5, "newsletter": True},
            "missing": {"seats": 1},
            "mistyped": {"email": "a@b.test", "seats": "1"},
            "unknown": {"email": "a@b.test", "seats": 1, "x": "y"},
        }
        fields = all_fields[variant]
        return response(intervention, "submit_input", fields=fields), variant.endswith("valid")
    if variant == "other_valid":
        return response(intervention, "decline_questions"), True
    all_answers: dict[str, dict[str, Any]] = {
        "valid": {"q1": "a", "q2": "b"},
        "missing": {"q1": "a"},
        "mistyped": {"q1": "a", "q2": False},
        "unknown": {"q1": "a", "q2": "b", "q9": "c"},
    }
    answers = all_answers[variant]
    return response(intervention, "answer_questions", answers=answers), variant == "valid"


class AuvyJobs(RuleBasedStateMachine):
    """Random starts, clock moves and client/control actions; the declared tables must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.h = make()
        self.who = self.h.who()
        self.jobs: list[str] = []
        self.cancelled: set[str] = set()
        self.last: dict[str, tuple[object, ...]] = {}
        self.max_progress: dict[str, int] = {}

    def pick(self, index: int) -> Job:
        return self.h.job(self.jobs[index % len(self.jobs)])

    def attempt(self, job: Job, action: Callable[[], object], *, expect_ok: bool | None) -> bool:
        """Run an action; a refused one must leave the job as it was."""
        before = snapshot(self.h, job.id)
        try:
            action()
        except (IllegalTransition, InvalidInput) as exc:
            assert expect_ok is not True, f"refused unexpectedly: {exc}"
            assert snapshot(self.h, job.id) == before
            return False
        assert expect_ok is not False, "accepted unexpectedly"
        return True

    @precondition(lambda self: len(self.jobs) < 6)
    @rule(kind=st.sampled_from(STARTS))
    def start(self, kind: str) -> None:
        if kind == "chat":
            job = self.h.model.chat(self.who, TRACE, "status of the ticket?", None)
        elif kind == "audio":
            job = self.h.model.transcribe(self.who, "aGVsbG8gd29ybGQ=", "audio/webm")
        else:
            job = self.h.model.start_pathway(self.who, PATHWAYS[kind])
        assert status_of(job) is JobStatus.PENDING
        self.jobs.append(job.id)

    @rule(ms=st.one_of(st.integers(0, STEP_MS * 3), st.integers(0, 400)))
    def advance(self, ms: int) -> None:
        self.h.advance(ms)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 9))
    def cancel(self, index: int) -> None:
        job = self.pick(index)
        ok = self.attempt(
            job,
            lambda: self.h.model.cancel(self.who, job.id),
            expect_ok=job.status in ACTIONS["cancel"][0],
        )
        if ok:
            self.cancelled.add(job.id)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 9))
    def resume(self, index: int) -> None:
        job = self.pick(index)
        self.attempt(
            job,
            lambda: self.h.model.resume(self.who, job.id),
            expect_ok=job.status in ACTIONS["resume"][0],
        )
        if job.status is not JobStatus.FAILED:
            assert self.h.model.waiting_for(job) is None

    def waiting(self) -> list[str]:
        return [j for j in self.jobs if self.h.job(j).status is JobStatus.WAITING]

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 9), variant=st.sampled_from(SUBMISSIONS))
    def submit(self, index: int, variant: str) -> None:
        self.respond(self.pick(index), variant)

    @precondition(lambda self: self.waiting())
    @rule(index=st.integers(0, 9), variant=st.sampled_from(SUBMISSIONS))
    def answer_a_waiting_job(self, index: int, variant: str) -> None:
        waiting = self.waiting()
        self.respond(self.h.job(waiting[index % len(waiting)]), variant)

    def respond(self, job: Job, variant: str) -> None:
        intervention = self.h.model.waiting_for(job)
        body, valid = build_submission(intervention, variant)
        accepted = self.attempt(job, lambda: self.h.submit(job, body), expect_ok=valid)
        if accepted:
            assert intervention is not None
            assert status_of_intervention(intervention) == RESPONSE_STATUS[body["action"]]
            assert intervention.response == {k: v for k, v in body.items() if k != "type"}
            assert job.status in (JobStatus.RUNNING, JobStatus.FAILED)

    @precondition(lambda self: self.jobs)
    @rule(index=st.integers(0, 9), outcome=st.sampled_from(["complete", "fail", "explode"]))
    def force(self, index: int, outcome: str) -> None:
        job = self.pick(index)
        self.attempt(
            job,
            lambda: self.h.model.force(job.id, outcome, "forced"),
            expect_ok=not job.terminal and outcome != "explode",
        )

    @invariant()
    def tables_hold(self) -> None:
        h = self.h
        for job_id in self.jobs:
            job = h.job(job_id)
            entries = h.model.read_events(job, None).entries
            ids = [e.id for e in entries]
            assert ids == sorted(set(ids)), "stream ids strictly increase"
            events = [e.data for e in entries]

            # Every status change on the stream is an edge of the table, starting from pending.
            status = JobStatus.PENDING
            progress = 0
            for event in events:
                if event["type"] != "state_update":
                    continue
                new = JobStatus(str(event["status"]))
                assert new == status or TRANSITIONS.allowed(status, new), (status, new)
                status = new
                value = event["progress"]
                assert isinstance(value, int)
                assert value >= progress, "progress never decreases on the stream"
                progress = value
            assert status is job.status, "the last state_update is the job's status"
            if job.status is JobStatus.PENDING:
                assert events == []

            # Progress: monotone over time, 100 exactly when completed.
            assert job.progress >= self.max_progress.get(job_id, 0)
            self.max_progress[job_id] = job.progress
            assert (job.progress == 100) is (job.status is JobStatus.COMPLETED)

            # Terminal entries: one, last, matching the status.
            terminal = [e for e in events if e["type"] in ("complete", "error")]
            if job.status is JobStatus.COMPLETED:
                assert terminal == [events[-1]]
                assert events[-1] == {"type": "complete", "result": job.result}
            elif job.status is JobStatus.FAILED:
                assert terminal == [events[-1]]
                assert events[-1]["type"] == "error"
                assert job.failed_reason
            else:
                assert terminal == []
            if job_id in self.cancelled:
                assert status_of(job) is JobStatus.FAILED
                assert job.failed_reason == CANCELLED_REASON
                assert events[-1]["code"] == "CANCELLED"

            # Interventions: a waiting job has exactly one pending intervention, others none.
            pending = [
                i
                for i in h.model.interventions.values()
                if i.job_id == job_id and i.status == "pending"
            ]
            if job.status is JobStatus.WAITING:
                intervention = h.model.waiting_for(job)
                assert intervention is not None
                assert pending == [intervention]
            else:
                assert pending == []
                assert job.intervention_id is None

            # Terminal jobs never change again.
            now = snapshot(h, job_id)
            before = self.last.get(job_id)
            if before is not None and TRANSITIONS.is_terminal(JobStatus(str(before[0]))):
                assert now == before, "a terminal job changed"
            self.last[job_id] = now


AuvyJobs.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestAuvyJobs = AuvyJobs.TestCase
