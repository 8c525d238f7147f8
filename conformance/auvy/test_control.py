"""POST /v1/jobs/{jobId}/cancel, /resume and /input."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import auvy_error_envelope, body_of, status_is
from conformance.clients.auvy import AuvyClient
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}
# The documents give no success code for cancel, resume or input.
OK = range(200, 300)


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


def waiting_job(auvy: AuvyClient, profile: TargetProfile, kind: str) -> tuple[str, dict[str, Any]]:
    job_id = auvy.start(profile.need(f"auvy.pathways.{kind}.id"))
    snap = auvy.wait_for(job_id, {"waiting"}, timeout(profile))
    waiting = snap["waitingFor"]
    assert isinstance(waiting, dict) and waiting.get("interventionId"), snap
    return job_id, waiting


def response(
    profile: TargetProfile, waiting: dict[str, Any], action: str, **extra: Any
) -> dict[str, Any]:
    return {
        "workspace_id": profile.need("auvy.workspace_id"),
        "input": {
            "type": "intervention_response",
            "interventionId": waiting["interventionId"],
            "action": action,
            **extra,
        },
    }


def unchanged(auvy: AuvyClient, job_id: str, before: dict[str, Any]) -> None:
    after = auvy.status(job_id)
    assert after["status"] == before["status"], f"status moved to {after['status']}"
    assert after.get("waitingFor") == before.get("waitingFor"), "the intervention changed"


# --- cancel --------------------------------------------------------------------------------------


@req("auvy.jobs.cancel.terminal-400", "auvy.errors.validation")
@pytest.mark.parametrize("kind", ["complete", "fail"])
def test_cancel_of_a_terminal_job_is_400(
    auvy: AuvyClient, profile: TargetProfile, kind: str
) -> None:
    job_id = auvy.start(profile.need(f"auvy.pathways.{kind}.id"))
    before = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    auvy_error_envelope(auvy.cancel(job_id), 400, "VALIDATION_ERROR")
    after = auvy.status(job_id)
    assert (after["status"], after.get("result"), after.get("failedReason")) == (
        before["status"],
        before.get("result"),
        before.get("failedReason"),
    ), "a refused cancel changed the job"


@req("auvy.jobs.cancel.live")
def test_cancel_of_a_running_job_stops_it(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.long.id"))
    auvy.wait_for(job_id, {"running"}, timeout(profile))
    status_is(auvy.cancel(job_id), OK)
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "failed", f"a cancelled job ended {final['status']}"
    progress = final["progress"]
    time.sleep(0.3)
    later = auvy.status(job_id)
    assert later["status"] == final["status"] and later["progress"] == progress, "it kept running"
    # Its stream ends, with an error entry as the terminal event.
    read = auvy.read_stream(job_id)
    assert read.ended and read.payloads and read.payloads[-1]["type"] == "error", read.payloads[-3:]


@req("auvy.jobs.cancel.live")
def test_cancel_of_a_fresh_job(auvy: AuvyClient, profile: TargetProfile) -> None:
    # The long pathway cannot finish before the cancel arrives, so no refusal is acceptable.
    job_id = auvy.start(profile.need("auvy.pathways.long.id"))
    status_is(auvy.cancel(job_id), OK)
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "failed", f"a cancelled job ended {final['status']}"


@req("auvy.jobs.cancel.live")
def test_cancel_of_a_waiting_job(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, _ = waiting_job(auvy, profile, "approval")
    status_is(auvy.cancel(job_id), OK)
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "failed" and not final.get("waitingFor"), final


@req("auvy.jobs.cancel.reported-as-failed")
def test_cancelled_job_reports_failed_with_reason_cancelled(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.long.id"))
    auvy.wait_for(job_id, {"running"}, timeout(profile))
    response = auvy.cancel(job_id)
    status_is(response, 200)
    body = body_of(response)
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert (final["status"], final["failedReason"]) == ("failed", "cancelled"), final
    if isinstance(body, dict) and "status" in body:
        assert body["status"] == "failed"
    terminal = auvy.read_stream(job_id).terminal
    assert terminal is not None and terminal.get("code") == "CANCELLED", terminal


@req("auvy.jobs.cancel.terminal-400")
def test_cancel_twice_is_400_the_second_time(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.long.id"))
    auvy.wait_for(job_id, {"running"}, timeout(profile))
    status_is(auvy.cancel(job_id), OK)
    auvy.wait_for(job_id, TERMINAL, timeout(profile))
    auvy_error_envelope(auvy.cancel(job_id), 400, "VALIDATION_ERROR")


# --- resume --------------------------------------------------------------------------------------


@req("auvy.jobs.resume.paused")
def test_resume_of_a_paused_job_completes_it(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.pause.id"))
    auvy.wait_for(job_id, {"paused"}, timeout(profile))
    time.sleep(0.2)
    assert auvy.status(job_id)["status"] == "paused", "a paused job moved on by itself"
    status_is(auvy.resume(job_id), OK)
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"


@req("auvy.jobs.resume.paused")
def test_resume_of_a_waiting_job_moves_it_on(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, _ = waiting_job(auvy, profile, "approval")
    status_is(auvy.resume(job_id), OK)
    final = auvy.wait_for(job_id, TERMINAL | {"running"}, timeout(profile))
    assert final["status"] != "waiting"
    auvy.wait_for(job_id, TERMINAL, timeout(profile))


@req("auvy.jobs.resume.other-states")
@pytest.mark.parametrize("kind", ["complete", "fail"])
def test_resume_of_a_terminal_job_is_400(
    auvy: AuvyClient, profile: TargetProfile, kind: str
) -> None:
    job_id = auvy.start(profile.need(f"auvy.pathways.{kind}.id"))
    before = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    auvy_error_envelope(auvy.resume(job_id), 400, "VALIDATION_ERROR")
    assert auvy.status(job_id)["status"] == before["status"]


@req("auvy.jobs.resume.other-states")
def test_resume_of_a_running_job_is_400(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.long.id"))
    try:
        auvy.wait_for(job_id, {"running"}, timeout(profile))
        auvy_error_envelope(auvy.resume(job_id), 400, "VALIDATION_ERROR")
        assert auvy.status(job_id)["status"] == "running"
    finally:
        auvy.cancel(job_id)


# --- input ---------------------------------------------------------------------------------------


@req("auvy.jobs.input.actions", "auvy.jobs.input.waiting-needs-input")
def test_approve_moves_the_job_on_to_completion(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, waiting = waiting_job(auvy, profile, "approval")
    time.sleep(0.2)
    assert auvy.status(job_id)["status"] == "waiting", "a waiting job moved on without input"
    status_is(auvy.submit_input(job_id, response(profile, waiting, "approve")), OK)
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"


@req("auvy.jobs.input.actions")
def test_reject_ends_the_job_failed(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, waiting = waiting_job(auvy, profile, "approval")
    status_is(
        auvy.submit_input(job_id, response(profile, waiting, "reject", comment="not now")), OK
    )
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "failed" and final["failedReason"], final


@req("auvy.jobs.input.actions")
def test_submit_input_moves_the_job_on(auvy: AuvyClient, profile: TargetProfile) -> None:
    fields = profile.need("auvy.pathways.input.fields")
    job_id, waiting = waiting_job(auvy, profile, "input")
    status_is(
        auvy.submit_input(job_id, response(profile, waiting, "submit_input", fields=fields)), OK
    )
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"


def _answers(waiting: dict[str, Any]) -> dict[str, str]:
    return {q["id"]: f"answer to {q['id']}" for q in waiting.get("questions", [])}


@req("auvy.jobs.input.actions")
def test_answer_questions_moves_the_job_on(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, waiting = waiting_job(auvy, profile, "questions")
    body = response(profile, waiting, "answer_questions", answers=_answers(waiting))
    status_is(auvy.submit_input(job_id, body), OK)
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"


@req("auvy.jobs.input.actions")
def test_decline_questions_moves_the_job_on(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, waiting = waiting_job(auvy, profile, "questions")
    status_is(auvy.submit_input(job_id, response(profile, waiting, "decline_questions")), OK)
    final = auvy.wait_for(job_id, TERMINAL | {"running"}, timeout(profile))
    assert final["status"] != "waiting"


Body = Callable[[TargetProfile, dict[str, Any]], Any]

MISMATCHES: dict[str, tuple[str, Body]] = {
    "wrong-intervention-id": (
        "approval",
        lambda p, w: response(p, {"interventionId": "int_not_this_one"}, "approve"),
    ),
    "action-of-other-kind": ("approval", lambda p, w: response(p, w, "submit_input", fields={})),
    "answers-for-approval": (
        "approval",
        lambda p, w: response(p, w, "answer_questions", answers={}),
    ),
    "missing-fields": ("input", lambda p, w: response(p, w, "submit_input")),
    "missing-required-field": ("input", lambda p, w: response(p, w, "submit_input", fields={})),
    "approve-on-input": ("input", lambda p, w: response(p, w, "approve")),
    "missing-answers": ("questions", lambda p, w: response(p, w, "answer_questions")),
    "partial-answers": ("questions", lambda p, w: response(p, w, "answer_questions", answers={})),
    "reject-on-questions": ("questions", lambda p, w: response(p, w, "reject")),
}


@req("auvy.jobs.input.must-match", "auvy.errors.validation")
@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_input_not_matching_the_intervention_is_400_and_changes_nothing(
    auvy: AuvyClient, profile: TargetProfile, case: str
) -> None:
    kind, make = MISMATCHES[case]
    job_id, waiting = waiting_job(auvy, profile, kind)
    before = auvy.status(job_id)
    try:
        auvy_error_envelope(
            auvy.submit_input(job_id, make(profile, waiting)), 400, "VALIDATION_ERROR"
        )
        unchanged(auvy, job_id, before)
    finally:
        auvy.cancel(job_id)


SHAPES: dict[str, Body] = {
    "empty": lambda p, w: {},
    "no-workspace": lambda p, w: {"input": response(p, w, "approve")["input"]},
    "no-input": lambda p, w: {"workspace_id": p.need("auvy.workspace_id")},
    "input-not-object": lambda p, w: {"workspace_id": p.need("auvy.workspace_id"), "input": "yes"},
    "wrong-type": lambda p, w: _patch(response(p, w, "approve"), type="form_response"),
    "unknown-action": lambda p, w: response(p, w, "maybe"),
    "no-intervention-id": lambda p, w: _drop(response(p, w, "approve"), "interventionId"),
    "workspace-malformed": lambda p, w: {**response(p, w, "approve"), "workspace_id": "acme"},
    "array": lambda p, w: [response(p, w, "approve")],
}


def _patch(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, "input": {**body["input"], **changes}}


def _drop(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {**body, "input": {k: v for k, v in body["input"].items() if k != key}}


@req("auvy.jobs.input.other-shapes-400", "auvy.errors.validation")
@pytest.mark.parametrize("case", sorted(SHAPES))
def test_other_input_shapes_are_400_and_change_nothing(
    auvy: AuvyClient, profile: TargetProfile, case: str
) -> None:
    job_id, waiting = waiting_job(auvy, profile, "approval")
    before = auvy.status(job_id)
    try:
        auvy_error_envelope(
            auvy.submit_input(job_id, SHAPES[case](profile, waiting)), 400, "VALIDATION_ERROR"
        )
        unchanged(auvy, job_id, before)
    finally:
        auvy.cancel(job_id)


@req("auvy.jobs.input.extra-members-400")
def test_input_with_an_undocumented_member_is_400(auvy: AuvyClient, profile: TargetProfile) -> None:
    # The document's body ends in "...": more members may belong to an input, so refusing an
    # unknown one is the reference's choice.
    job_id, waiting = waiting_job(auvy, profile, "approval")
    before = auvy.status(job_id)
    try:
        body = _patch(response(profile, waiting, "approve"), surprise=True)
        auvy_error_envelope(auvy.submit_input(job_id, body), 400, "VALIDATION_ERROR")
        unchanged(auvy, job_id, before)
    finally:
        auvy.cancel(job_id)


@req("auvy.jobs.input.must-match", "auvy.errors.validation")
def test_input_for_a_job_that_is_not_waiting_is_400(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    auvy.wait_for(job_id, TERMINAL, timeout(profile))
    stale = {"interventionId": "int_whatever"}
    auvy_error_envelope(
        auvy.submit_input(job_id, response(profile, stale, "approve")), 400, "VALIDATION_ERROR"
    )


@req("auvy.jobs.input.must-match")
def test_a_used_intervention_cannot_be_answered_again(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id, waiting = waiting_job(auvy, profile, "approval")
    status_is(auvy.submit_input(job_id, response(profile, waiting, "approve")), OK)
    second = auvy.submit_input(job_id, response(profile, waiting, "reject"))
    auvy_error_envelope(second, 400, "VALIDATION_ERROR")
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"
