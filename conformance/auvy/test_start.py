"""Starting runs: POST /v1/jobs, /v1/pathways/{id}/execute, /v1/transcribe, /v1/chat/{traceId}."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from conformance.checks import auvy_error_envelope, body_of, status_is
from conformance.clients.auvy import NOT_FOUND_CODES, STARTED, AuvyClient
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}


def job_timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


@req("auvy.jobs.create.response")
def test_create_job_answers_job_id_and_pending(auvy: AuvyClient, profile: TargetProfile) -> None:
    pathway = profile.need("auvy.pathways.complete.id")
    response = auvy.create_job({"pathway_id": pathway, "input": {"topic": "q3"}})
    status_is(response, STARTED)
    body = body_of(response)
    assert isinstance(body.get("job_id"), str) and body["job_id"], body
    assert body.get("status") == "pending", (
        f"status should be 'pending', got {body.get('status')!r}"
    )
    # The id is usable right away: the job exists for its workspace.
    auvy.status(body["job_id"])


@req("auvy.jobs.execute.returns-job-id")
def test_execute_pathway_answers_job_id(auvy: AuvyClient, profile: TargetProfile) -> None:
    pathway = profile.need("auvy.pathways.complete.id")
    response = auvy.execute_pathway(pathway, {"input": {"topic": "q3"}})
    status_is(response, STARTED)
    job_id = body_of(response)["job_id"]
    final = auvy.wait_for(job_id, TERMINAL, job_timeout(profile))
    assert final["status"] == "completed", final


@req("auvy.jobs.execute.returns-job-id")
def test_execute_pathway_without_body(auvy: AuvyClient, profile: TargetProfile) -> None:
    pathway = profile.need("auvy.pathways.complete.id")
    response = auvy.execute_pathway(pathway)
    status_is(response, STARTED)
    assert body_of(response)["job_id"]


@req("auvy.jobs.create.pathway-required", "auvy.errors.validation")
@pytest.mark.parametrize(
    "body",
    [{}, {"input": {"a": 1}}, {"pathway_id": None}, {"pathway_id": 42}],
    ids=["empty", "input-only", "null-id", "number-id"],
)
def test_create_job_without_a_valid_pathway_is_400(auvy: AuvyClient, body: object) -> None:
    response = auvy.create_job(body)
    auvy_error_envelope(response, 400, "VALIDATION_ERROR")


@req("auvy.jobs.create.pathway-required")
def test_create_job_with_a_malformed_pathway_id_is_refused(auvy: AuvyClient) -> None:
    # The document shows "<uuid>": an id of another form is invalid (400) or names no pathway
    # (404); both are answers of the error table.
    response = auvy.create_job({"pathway_id": "not-a-uuid"})
    status = response.status_code
    expected = {400: {"VALIDATION_ERROR"}, 404: NOT_FOUND_CODES}
    assert status in expected, f"a malformed pathway_id answered {status}"
    auvy_error_envelope(response, status, expected[status])


@req("auvy.jobs.create.both-400")
def test_create_job_with_both_pathway_id_and_inline_is_400(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    pathway = profile.need("auvy.pathways.complete.id")
    response = auvy.create_job({"pathway_id": pathway, "pathway": {"nodes": []}})
    auvy_error_envelope(response, 400, "VALIDATION_ERROR")


@req("auvy.jobs.create.inline-pathway")
def test_create_job_with_inline_pathway(auvy: AuvyClient, profile: TargetProfile) -> None:
    response = auvy.create_job({"pathway": {"nodes": [{"id": "n1", "type": "echo"}]}, "input": {}})
    status_is(response, STARTED)
    job_id = body_of(response)["job_id"]
    assert auvy.status(job_id)["status"] in {"pending", "running", "completed", "waiting", "paused"}


@req("auvy.jobs.create.input-or-data")
@pytest.mark.parametrize("key", ["input", "data"])
def test_create_job_accepts_input_or_data(
    auvy: AuvyClient, profile: TargetProfile, key: str
) -> None:
    pathway = profile.need("auvy.pathways.complete.id")
    response = auvy.create_job({"pathway_id": pathway, key: {"topic": "q3"}})
    status_is(response, STARTED)
    final = auvy.wait_for(body_of(response)["job_id"], TERMINAL, job_timeout(profile))
    assert final["status"] == "completed", final


@req("auvy.jobs.create.unknown-pathway", "auvy.errors.not-found")
def test_unknown_pathway_is_404(auvy: AuvyClient) -> None:
    response = auvy.create_job({"pathway_id": "00000000-0000-4000-8000-000000000000"})
    auvy_error_envelope(response, 404, NOT_FOUND_CODES)
    response = auvy.execute_pathway("00000000-0000-4000-8000-000000000000")
    auvy_error_envelope(response, 404, NOT_FOUND_CODES)


@req("auvy.jobs.create.unknown-pathway", "auvy.errors.other-workspace-404")
def test_other_workspaces_pathway_is_404_and_starts_nothing(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    foreign = profile.need("auvy.other_pathway_id")
    main, owner = auvy_as("main"), auvy_as("other")
    # No test starts the foreign pathway, so its jobs (in either workspace) are a stable count.
    before = owner.job_ids(pathway_id=foreign)
    auvy_error_envelope(main.create_job({"pathway_id": foreign}), 404, NOT_FOUND_CODES)
    auvy_error_envelope(main.execute_pathway(foreign), 404, NOT_FOUND_CODES)
    after = owner.job_ids(pathway_id=foreign)
    assert after == before, f"a refused start created {set(after) - set(before)}"


AUDIO = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)).decode()


@req("auvy.jobs.transcribe.returns-job-id")
def test_transcribe_answers_job_id_and_completes(auvy: AuvyClient, profile: TargetProfile) -> None:
    response = auvy.transcribe({"audio_base64": AUDIO, "mime_type": "audio/webm"})
    status_is(response, STARTED)
    job_id = body_of(response)["job_id"]
    final = auvy.wait_for(job_id, TERMINAL, job_timeout(profile))
    assert final["status"] == "completed", final
    assert final["result"] is not None, "a completed transcription has no result"


@req("auvy.jobs.transcribe.body", "auvy.errors.validation")
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"audio_base64": AUDIO},
        {"mime_type": "audio/webm"},
        {"audio_base64": "", "mime_type": "audio/webm"},
        {"audio_base64": "***not base64***", "mime_type": "audio/webm"},
        {"audio_base64": AUDIO, "mime_type": "text/plain"},
        {"audio_base64": 12, "mime_type": "audio/webm"},
    ],
    ids=["empty", "no-mime", "no-audio", "empty-audio", "bad-base64", "not-audio", "number"],
)
def test_transcribe_rejects_bad_bodies(auvy: AuvyClient, body: object) -> None:
    auvy_error_envelope(auvy.transcribe(body), 400, "VALIDATION_ERROR")


@req("auvy.jobs.chat.returns-job-id")
def test_chat_answers_job_id(auvy: AuvyClient, profile: TargetProfile) -> None:
    trace = profile.need("auvy.trace_id")
    response = auvy.chat(trace, {"message": "What changed since yesterday?"})
    status_is(response, STARTED)
    job_id = body_of(response)["job_id"]
    final = auvy.wait_for(job_id, TERMINAL, job_timeout(profile))
    assert final["status"] == "completed", final


@req("auvy.jobs.chat.returns-job-id", "auvy.errors.validation")
@pytest.mark.parametrize(
    "body",
    [{}, {"message": ""}, {"message": 5}, {"message": "hi", "neuron_task_options": "system"}],
    ids=["empty", "empty-message", "number", "options-not-object"],
)
def test_chat_rejects_bad_bodies(auvy: AuvyClient, profile: TargetProfile, body: object) -> None:
    trace = profile.need("auvy.trace_id")
    auvy_error_envelope(auvy.chat(trace, body), 400, "VALIDATION_ERROR")


@req("auvy.jobs.chat.unknown-trace", "auvy.errors.not-found")
def test_chat_on_an_unknown_trace_is_404(auvy: AuvyClient) -> None:
    response = auvy.chat("trc_does_not_exist_0000", {"message": "hi"})
    auvy_error_envelope(response, 404, NOT_FOUND_CODES)


@req("auvy.jobs.chat.unknown-trace", "auvy.errors.not-found")
def test_chat_on_another_workspaces_trace_is_404(auvy: AuvyClient, profile: TargetProfile) -> None:
    foreign = profile.need("auvy.other_trace_id")
    auvy_error_envelope(auvy.chat(foreign, {"message": "hi"}), 404, NOT_FOUND_CODES)
