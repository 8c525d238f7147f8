"""GET /v1/interventions, GET /v1/interventions/{id}, POST /v1/interventions/{id}/respond."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import auvy_error_envelope, body_of, status_is
from conformance.clients.auvy import AuvyClient
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


def waiting(auvy: AuvyClient, profile: TargetProfile, kind: str) -> tuple[str, dict[str, Any]]:
    job_id = auvy.start(profile.need(f"auvy.pathways.{kind}.id"))
    snap = auvy.wait_for(job_id, {"waiting"}, timeout(profile))
    return job_id, snap["waitingFor"]


def answers(waiting_for: dict[str, Any]) -> dict[str, str]:
    return {q["id"]: "yes" for q in waiting_for.get("questions", [])}


FLOWS: dict[
    str, tuple[str, Callable[[TargetProfile, dict[str, Any]], dict[str, Any]], str, str]
] = {
    # action: (pathway, body, intervention status after, job status after)
    "approve": ("approval", lambda p, w: {"action": "approve"}, "approved", "completed"),
    "reject": (
        "approval",
        lambda p, w: {"action": "reject", "comment": "no"},
        "rejected",
        "failed",
    ),
    "submit_input": (
        "input",
        lambda p, w: {"action": "submit_input", "fields": p.need("auvy.pathways.input.fields")},
        "answered",
        "completed",
    ),
    "answer_questions": (
        "questions",
        lambda p, w: {"action": "answer_questions", "answers": answers(w)},
        "answered",
        "completed",
    ),
    "decline_questions": (
        "questions",
        lambda p, w: {"action": "decline_questions"},
        "rejected",
        "completed",
    ),
}


# FACTS.md: "Intervention statuses: pending, approved, rejected, answered, expired, cancelled."
INTERVENTION_STATUSES = {"pending", "approved", "rejected", "answered", "expired", "cancelled"}


@req("auvy.interventions.respond")
@pytest.mark.parametrize("action", sorted(FLOWS))
def test_respond_moves_the_job_on(auvy: AuvyClient, profile: TargetProfile, action: str) -> None:
    kind, make, _, _ = FLOWS[action]
    job_id, waiting_for = waiting(auvy, profile, kind)
    intervention_id = waiting_for["interventionId"]
    try:
        status_is(auvy.respond(intervention_id, make(profile, waiting_for)), range(200, 300))
        final = auvy.wait_for(job_id, TERMINAL | {"running"}, timeout(profile))
        assert final["status"] != "waiting", "the job still waits after the response"
        record = body_of(auvy.get_intervention(intervention_id))
        assert record["status"] in INTERVENTION_STATUSES - {"pending"}, record
    finally:
        auvy.cancel(job_id)


@req("auvy.interventions.respond-outcomes")
@pytest.mark.parametrize("action", sorted(FLOWS))
def test_respond_outcomes_of_the_reference(
    auvy: AuvyClient, profile: TargetProfile, action: str
) -> None:
    kind, make, intervention_status, job_status = FLOWS[action]
    job_id, waiting_for = waiting(auvy, profile, kind)
    intervention_id = waiting_for["interventionId"]
    response = auvy.respond(intervention_id, make(profile, waiting_for))
    status_is(response, 200)
    body = body_of(response)
    assert body["id"] == intervention_id and body["status"] == intervention_status, body
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == job_status, final
    assert body_of(auvy.get_intervention(intervention_id))["status"] == intervention_status


@req("auvy.interventions.stale-or-foreign", "auvy.errors.validation")
def test_responding_twice_is_400_and_changes_nothing(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id, waiting_for = waiting(auvy, profile, "approval")
    intervention_id = waiting_for["interventionId"]
    status_is(auvy.respond(intervention_id, {"action": "approve"}), range(200, 300))
    auvy_error_envelope(
        auvy.respond(intervention_id, {"action": "reject"}), 400, "VALIDATION_ERROR"
    )
    assert body_of(auvy.get_intervention(intervention_id))["status"] == "approved"
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"


@req("auvy.interventions.stale-or-foreign", "auvy.errors.validation")
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "submit_input", "fields": {}},
        {"action": "maybe"},
        {"action": "answer_questions", "answers": {}},
    ],
    ids=["empty", "wrong-kind", "unknown-action", "answers-for-approval"],
)
def test_mismatched_response_is_400_and_changes_nothing(
    auvy: AuvyClient, profile: TargetProfile, body: dict[str, Any]
) -> None:
    job_id, waiting_for = waiting(auvy, profile, "approval")
    intervention_id = waiting_for["interventionId"]
    try:
        auvy_error_envelope(auvy.respond(intervention_id, body), 400, "VALIDATION_ERROR")
        assert body_of(auvy.get_intervention(intervention_id))["status"] == "pending"
        assert auvy.status(job_id)["status"] == "waiting"
    finally:
        auvy.cancel(job_id)


@req("auvy.interventions.extra-members-400")
def test_response_with_an_undocumented_member_is_400(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    # FACTS.md gives the body as {action, comment?, fields?}; refusing other members is ours.
    job_id, waiting_for = waiting(auvy, profile, "approval")
    intervention_id = waiting_for["interventionId"]
    try:
        body = {"action": "approve", "surprise": 1}
        auvy_error_envelope(auvy.respond(intervention_id, body), 400, "VALIDATION_ERROR")
        assert body_of(auvy.get_intervention(intervention_id))["status"] == "pending"
    finally:
        auvy.cancel(job_id)


@req("auvy.interventions.stale-or-foreign", "auvy.errors.other-workspace-404")
def test_another_workspaces_intervention_is_404(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    owner, stranger = auvy_as("main"), auvy_as("other")
    job_id, waiting_for = waiting(owner, profile, "approval")
    intervention_id = waiting_for["interventionId"]
    try:
        for response in (
            stranger.get_intervention(intervention_id),
            stranger.respond(intervention_id, {"action": "approve"}),
        ):
            auvy_error_envelope(response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})
            assert job_id not in response.text
        listed = body_of(stranger.list_interventions(params={"job_id": job_id}))
        assert listed["interventions"] == [] and listed["total"] == 0
        assert owner.status(job_id)["status"] == "waiting"
    finally:
        owner.cancel(job_id)


@req("auvy.interventions.list")
def test_list_filters_by_job_and_status(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id, waiting_for = waiting(auvy, profile, "approval")
    intervention_id = waiting_for["interventionId"]
    by_job = body_of(auvy.list_interventions(params={"job_id": job_id}))
    assert [i["id"] for i in by_job["interventions"]] == [intervention_id]
    assert by_job["total"] == 1
    one = by_job["interventions"][0]
    alone = body_of(auvy.get_intervention(intervention_id))
    for key in ("id", "job_id", "status"):
        assert one.get(key) == alone.get(key), f"list and get disagree on {key}: {one}, {alone}"
    assert one["status"] == "pending" and one["job_id"] == job_id
    pending = body_of(auvy.list_interventions(params={"status": "pending", "limit": 100}))
    assert all(i["status"] == "pending" for i in pending["interventions"])
    auvy.cancel(job_id)
    cancelled = body_of(auvy.list_interventions(params={"job_id": job_id}))["interventions"]
    assert cancelled[0]["status"] == "cancelled", cancelled


@req("auvy.interventions.list.bad-query-400")
@pytest.mark.parametrize("params", [{"status": "done"}, {"limit": 0}, {"limit": 1000}])
def test_list_rejects_bad_query(auvy: AuvyClient, params: dict[str, Any]) -> None:
    auvy_error_envelope(auvy.list_interventions(params=params), 400, "VALIDATION_ERROR")


@req("auvy.interventions.list", "auvy.errors.not-found")
def test_unknown_intervention_is_404(auvy: AuvyClient) -> None:
    auvy_error_envelope(
        auvy.get_intervention("int_does_not_exist"), 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"}
    )
