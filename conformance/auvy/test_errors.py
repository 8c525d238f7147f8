"""The error table: each code a client can provoke, with its status; auth; workspace isolation."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from conformance.checks import ConformanceFailure, auvy_error_envelope, no_leak, status_is
from conformance.clients.auvy import BLOCKED_STATUSES, NOT_FOUND_CODES, AuvyClient, refused
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}
JOB_ID = "00000000-0000-4000-8000-0000000000aa"

Call = Callable[[AuvyClient, TargetProfile], httpx.Response]

EVERY_ROUTE: dict[str, Call] = {
    "createJob": lambda c, p: c.create_job({"pathway_id": p.need("auvy.pathways.complete.id")}),
    "executePathway": lambda c, p: c.execute_pathway(p.need("auvy.pathways.complete.id")),
    "listJobs": lambda c, p: c.list_jobs(),
    "getJobStatus": lambda c, p: c.get_status(JOB_ID),
    "streamJob": lambda c, p: c.api.request("streamJob", "GET", f"/v1/jobs/{JOB_ID}/stream"),
    "cancelJob": lambda c, p: c.cancel(JOB_ID),
    "resumeJob": lambda c, p: c.resume(JOB_ID),
    "submitJobInput": lambda c, p: c.submit_input(JOB_ID, {}),
    "transcribe": lambda c, p: c.transcribe({"audio_base64": "AAAA", "mime_type": "audio/webm"}),
    "chatTrace": lambda c, p: c.chat(p.need("auvy.trace_id"), {"message": "hi"}),
}


@req("auvy.errors.auth-required", "auvy.errors.typed-codes")
@pytest.mark.parametrize("operation", sorted(EVERY_ROUTE))
@pytest.mark.parametrize(
    "credentials",
    [None, "Bearer auvy_not_a_key_0000", "Basic dXNlcjpwYXNz", "Bearer", "auvy_test_acme_rw"],
    ids=["none", "unknown-key", "basic", "empty-bearer", "no-scheme"],
)
def test_every_route_requires_a_valid_key(
    auvy_as: Callable[[str | None], AuvyClient],
    profile: TargetProfile,
    operation: str,
    credentials: str | None,
) -> None:
    client = auvy_as(None)
    if credentials is not None:
        client.api.headers["Authorization"] = credentials
    response = EVERY_ROUTE[operation](client, profile)
    auvy_error_envelope(response, 401, "AUTH_REQUIRED")


# Valid requests: the documents do not order the checks, so an invalid body or an unknown id could
# fairly be refused for that (400/404) before the key's scope is looked at.
AUDIO = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)).decode()
VALID_WRITES: dict[str, Call] = {
    "transcribe": lambda c, p: c.transcribe({"audio_base64": AUDIO, "mime_type": "audio/webm"}),
    "chatTrace": lambda c, p: c.chat(p.need("auvy.trace_id"), {"message": "hi"}),
}


@req("auvy.errors.forbidden", "auvy.errors.typed-codes")
@pytest.mark.parametrize("operation", sorted(VALID_WRITES))
def test_read_only_key_cannot_write(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile, operation: str
) -> None:
    reader = auvy_as("read_only")
    response = VALID_WRITES[operation](reader, profile)
    auvy_error_envelope(response, 403, "FORBIDDEN")
    # Reads stay allowed for the same key.
    status_is(reader.list_jobs(), 200)


@req("auvy.errors.forbidden", "auvy.errors.typed-codes")
def test_read_only_key_cannot_cancel_and_the_job_runs_on(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    owner, reader = auvy_as("main"), auvy_as("read_only")
    job_id = owner.start(profile.need("auvy.pathways.long.id"))
    try:
        owner.wait_for(job_id, {"running"}, float(profile.get("auvy.job_timeout_s", 30)))
        auvy_error_envelope(reader.cancel(job_id), 403, "FORBIDDEN")
        status = owner.status(job_id)["status"]
        assert status == "running", f"a refused cancel moved the job to {status}"
    finally:
        owner.cancel(job_id)


UNTOUCHED_STARTS: dict[str, Callable[[AuvyClient, str], httpx.Response]] = {
    "createJob": lambda c, pathway: c.create_job({"pathway_id": pathway}),
    "executePathway": lambda c, pathway: c.execute_pathway(pathway),
}


@req("auvy.errors.forbidden", "auvy.errors.typed-codes")
@pytest.mark.parametrize("operation", sorted(UNTOUCHED_STARTS))
def test_read_only_key_cannot_start_and_starts_nothing(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile, operation: str
) -> None:
    # A pathway no test starts: its job list is the same before and after, whatever runs beside.
    pathway = str(profile.need("auvy.pathways.untouched.id"))
    reader, owner = auvy_as("read_only"), auvy_as("main")
    before = owner.job_ids(pathway_id=pathway)
    auvy_error_envelope(UNTOUCHED_STARTS[operation](reader, pathway), 403, "FORBIDDEN")
    after = owner.job_ids(pathway_id=pathway)
    assert after == before, f"a refused start created {set(after) - set(before)}"
    status_is(reader.list_jobs(), 200)


@req("auvy.errors.forbidden", "auvy.errors.typed-codes")
@pytest.mark.parametrize("key,code", [("trial_expired", "trial_expired"), ("cost_cap", "cost_cap")])
@pytest.mark.parametrize("operation", ["createJob", "transcribe"])
def test_blocked_workspace_cannot_start_jobs(
    auvy_as: Callable[[str | None], AuvyClient],
    profile: TargetProfile,
    key: str,
    code: str,
    operation: str,
) -> None:
    client = auvy_as(key)
    if operation == "createJob":
        # A pathway of that workspace: an unknown one could fairly be a 404 first.
        response = client.create_job({"pathway_id": profile.need(f"auvy.blocked.{key}_pathway")})
    else:
        response = client.transcribe({"audio_base64": AUDIO, "mime_type": "audio/webm"})
    refused(response, {status: {code} for status in BLOCKED_STATUSES})
    assert client.list_jobs().status_code == 200, "reads stay allowed for a blocked workspace"


@req("auvy.errors.not-found", "auvy.errors.typed-codes")
@pytest.mark.parametrize("operation", ["getJobStatus", "streamJob", "cancelJob", "resumeJob"])
def test_unknown_job_is_404(auvy: AuvyClient, profile: TargetProfile, operation: str) -> None:
    auvy_error_envelope(EVERY_ROUTE[operation](auvy, profile), 404, NOT_FOUND_CODES)


@req("auvy.errors.not-found", "auvy.errors.typed-codes")
def test_unknown_job_input_is_404(auvy: AuvyClient, profile: TargetProfile) -> None:
    body = {
        "workspace_id": profile.need("auvy.workspace_id"),
        "input": {"type": "intervention_response", "interventionId": "int_x", "action": "approve"},
    }
    auvy_error_envelope(auvy.submit_input(JOB_ID, body), 404, NOT_FOUND_CODES)


@req("auvy.errors.other-workspace-404", "auvy.errors.not-found")
def test_another_workspaces_job_is_404_everywhere_and_leaks_nothing(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    owner, stranger = auvy_as("main"), auvy_as("other")
    job_id = owner.start(profile.need("auvy.pathways.approval.id"))
    snap = owner.wait_for(job_id, {"waiting"}, float(profile.get("auvy.job_timeout_s", 30)))
    intervention = snap["waitingFor"]["interventionId"]
    calls = {
        "status": stranger.get_status(job_id),
        "stream": stranger.api.request("streamJob", "GET", f"/v1/jobs/{job_id}/stream"),
        "cancel": stranger.cancel(job_id),
        "resume": stranger.resume(job_id),
        "input": stranger.submit_input(
            job_id,
            {
                "workspace_id": profile.need("auvy.workspace_id"),
                "input": {
                    "type": "intervention_response",
                    "interventionId": intervention,
                    "action": "approve",
                },
            },
        ),
    }
    try:
        for name, response in calls.items():
            try:
                auvy_error_envelope(response, 404, NOT_FOUND_CODES)
                no_leak(response, intervention, profile.need("auvy.workspace_id"))
            except ConformanceFailure as failure:
                raise ConformanceFailure(f"{name}: {failure}") from failure
        # Nothing the stranger did reached the job.
        after = owner.status(job_id)
        assert after["status"] == "waiting", f"a stranger moved the job to {after['status']}"
        assert after["waitingFor"] == snap["waitingFor"], "a stranger changed the intervention"
    finally:
        owner.cancel(job_id)


@req("auvy.errors.validation", "auvy.errors.typed-codes")
@pytest.mark.parametrize(
    "content,content_type",
    [
        ("{not json", "application/json"),
        ('{"pathway_id": "x"', "application/json"),
        ("[]", "application/json"),
        ('"just a string"', "application/json"),
        ("pathway_id=abc", "application/x-www-form-urlencoded"),
        ("", "application/json"),
    ],
    ids=["malformed", "truncated", "array", "string", "form-encoded", "empty"],
)
def test_malformed_bodies_are_400(auvy: AuvyClient, content: str, content_type: str) -> None:
    response = auvy.api.request(
        "createJob", "POST", "/v1/jobs", content=content, headers={"Content-Type": content_type}
    )
    auvy_error_envelope(response, 400, "VALIDATION_ERROR")


@req("auvy.errors.unknown-route")
def test_unknown_route_answers_the_envelope(auvy: AuvyClient) -> None:
    response = auvy.api.request(None, "GET", "/v1/definitely-not-a-route")
    auvy_error_envelope(response, 404, NOT_FOUND_CODES)
