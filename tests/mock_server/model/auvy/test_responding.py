"""The interventions API on the model: list, get, respond; stale and foreign responses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mock_server.clock import ManualClock
from mock_server.model.auvy import AuvyModel, Job, JobStatus, Principal, Settings
from mock_server.model.engine import Engine
from mock_server.model.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from mock_server.model.store import MemoryStreams
from mock_server.profile import FIXTURES
from mock_server.seed import load_auvy

APPROVAL = "2d9a3b5c-4e6f-4a7b-8c1d-3e4f5a6b7c12"
INPUT = "3e0b4c6d-5f7a-4b8c-9d2e-4f5a6b7c8d13"
QUESTIONS = "4f1c5d7e-6a8b-4c9d-8e3f-5a6b7c8d9e14"


@dataclass
class H:
    clock: ManualClock
    model: AuvyModel

    def who(self, key: str = "auvy_test_acme_rw") -> Principal:
        return self.model.authenticate(key)

    def settle(self) -> None:
        self.clock.advance(1_000)
        self.model.engine.run_due()

    def waiting(self, pathway: str) -> tuple[Job, str]:
        job = self.model.start_pathway(self.who(), pathway)
        self.settle()
        assert job.status is JobStatus.WAITING and job.intervention_id is not None
        return job, job.intervention_id


@pytest.fixture
def h() -> H:
    clock = ManualClock()
    model = AuvyModel(
        Engine(clock), Settings(step_ms=10), streams=MemoryStreams(maxlen=None, ttl_ms=None)
    )
    load_auvy(model, FIXTURES / "seed" / "auvy.toml")
    return H(clock, model)


@pytest.mark.parametrize(
    "pathway,response,status,job_status",
    [
        (APPROVAL, {"action": "approve"}, "approved", JobStatus.COMPLETED),
        (APPROVAL, {"action": "reject"}, "rejected", JobStatus.FAILED),
        (
            INPUT,
            {"action": "submit_input", "fields": {"email": "a@b.c", "seats": 2}},
            "answered",
            JobStatus.COMPLETED,
        ),
        (
            QUESTIONS,
            {"action": "answer_questions", "answers": {"q1": "prod", "q2": "today"}},
            "answered",
            JobStatus.COMPLETED,
        ),
        (QUESTIONS, {"action": "decline_questions"}, "rejected", JobStatus.COMPLETED),
    ],
    ids=["approve", "reject", "submit_input", "answer_questions", "decline_questions"],
)
def test_respond_closes_the_intervention_and_moves_the_job(
    h: H, pathway: str, response: dict[str, object], status: str, job_status: JobStatus
) -> None:
    job, intervention_id = h.waiting(pathway)
    intervention = h.model.respond(h.who(), intervention_id, response)
    assert intervention.status == status and intervention.response is not None
    assert intervention.response["action"] == response["action"]
    h.settle()
    assert job.status is job_status


def test_a_stale_response_is_refused_and_changes_nothing(h: H) -> None:
    job, intervention_id = h.waiting(APPROVAL)
    h.model.respond(h.who(), intervention_id, {"action": "approve"})
    with pytest.raises(InvalidInput, match="no longer pending"):
        h.model.respond(h.who(), intervention_id, {"action": "reject"})
    assert h.model.get_intervention(h.who(), intervention_id).status == "approved"
    h.settle()
    assert job.status is JobStatus.COMPLETED


@pytest.mark.parametrize(
    "response,field",
    [
        ({"action": "submit_input", "fields": {}}, "action"),
        ({"action": "answer_questions", "answers": {}}, "action"),
        ({"action": "maybe"}, "action"),
    ],
)
def test_a_mismatched_response_names_the_field_without_the_input_prefix(
    h: H, response: dict[str, object], field: str
) -> None:
    job, intervention_id = h.waiting(APPROVAL)
    with pytest.raises(InvalidInput) as caught:
        h.model.respond(h.who(), intervention_id, response)
    assert caught.value.field == field
    assert job.status is JobStatus.WAITING
    assert h.model.get_intervention(h.who(), intervention_id).status == "pending"


def test_foreign_and_read_only_callers(h: H) -> None:
    job, intervention_id = h.waiting(APPROVAL)
    other = h.who("auvy_test_globex_rw")
    with pytest.raises(NotFound):
        h.model.get_intervention(other, intervention_id)
    with pytest.raises(NotFound):
        h.model.respond(other, intervention_id, {"action": "approve"})
    with pytest.raises(Forbidden):
        h.model.respond(h.who("auvy_test_acme_ro"), intervention_id, {"action": "approve"})
    assert h.model.list_interventions(other) == ([], 0)
    assert job.status is JobStatus.WAITING


def test_list_filters_and_cancellation(h: H) -> None:
    first, first_id = h.waiting(APPROVAL)
    _, second_id = h.waiting(QUESTIONS)
    found, total = h.model.list_interventions(h.who())
    assert total == 2 and [i.id for i in found] == [second_id, first_id]  # newest first
    assert [i.id for i in h.model.list_interventions(h.who(), job_id=first.id)[0]] == [first_id]
    assert h.model.list_interventions(h.who(), limit=1)[1] == 2
    h.model.cancel(h.who(), first.id)
    assert h.model.get_intervention(h.who(), first_id).status == "cancelled"
    pending, _ = h.model.list_interventions(h.who(), status="pending")
    assert [i.id for i in pending] == [second_id]
    with pytest.raises(IllegalTransition):
        h.model.cancel(h.who(), first.id)
