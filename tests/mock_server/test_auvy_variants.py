"""AUVY variants (mock_server.variants.auvy): each switch makes the other answer the documents
allow, and the reference (every switch at its default) keeps its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.apis.auvy import parse_after
from mock_server.app import create_app
from mock_server.clock import ManualClock
from mock_server.errors import RequestInvalid
from mock_server.profile import ServerProfile
from mock_server.variants import PRESETS, VariantError, variant_from_table
from mock_server.variants.auvy import NOT_IN_CHOICES, OTHER_CHOICES, AuvyVariant
from mock_server.world import World

from .test_app import COMPLETE, LONG, MAIN, PROFILE, SETTLE_MS, Client

SUPPORT_TOKEN = "shr_acme_support_valid_7Hq2mK9xQ"
REVOKED = "shr_acme_support_revoked_2Lp8vN3"
ROTATED = "shr_acme_support_rotated_5Rt6wB1"
EXPIRED_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfYWNtZV9kZXYiLCJleHAiOjE3NjcyMjU2MDAsI"
    "mlhdCI6MTc2NzIyMjAwMH0.udnZNW34THTqfsDxfiATr3JUN3LkXX-6enoed32LvQE"
)
EXECUTE = "/v1/public/receptors/acme/support/execute"


class VariantClient(Client):
    """Checks every answer against the spec: the reference with its decisions, a variant only
    against what the documents promise (the x-reference-only constraints dropped)."""

    def __init__(self, app: Starlette, decisions: bool) -> None:
        super().__init__(app)
        self.decisions = decisions

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.request(method, self.prefix + path, **kwargs)
        world: World = self.app.state.world
        operation, _ = world.specs["auvy"].match(method, path)
        body = None
        if "json" in response.headers.get("content-type", ""):
            body = response.json()
        spec = ResponseSpec.for_api("auvy", decisions=self.decisions)
        spec.check(operation.operation_id, response.status_code, response.headers, body)
        return response

    def start(self, pathway: str, key: str = MAIN, **body: Any) -> str:
        response = self.post("/v1/jobs", key=key, json={"pathway_id": pathway, **body})
        assert response.status_code in (200, 202), response.text
        return str(response.json()["job_id"])


def make(**switches: Any) -> VariantClient:
    profile = ServerProfile.from_dict({**PROFILE, "variant": {"auvy": switches}})
    app: Starlette = create_app(profile, clock=ManualClock())
    world: World = app.state.world
    world.reset()
    return VariantClient(app, decisions=not switches)


@pytest.fixture(scope="module")
def reference() -> VariantClient:
    return make()


@pytest.fixture(scope="module")
def choices() -> VariantClient:
    return make(**OTHER_CHOICES)


def events(client: VariantClient, job_id: str) -> list[dict[str, Any]]:
    world: World = client.app.state.world
    job = world.auvy.jobs.get(job_id)
    assert job is not None
    return [dict(entry.data) for entry in world.auvy.read_events(job, None).entries]


def finished(client: VariantClient, job_id: str) -> dict[str, Any]:
    client.advance(SETTLE_MS)
    return client.job(job_id)


def test_every_switch_has_its_other_answer_in_the_choices_preset_or_says_why_not() -> None:
    defaults = AuvyVariant()
    others = {**OTHER_CHOICES, **NOT_IN_CHOICES}
    assert set(others) == set(vars(defaults)) and not set(OTHER_CHOICES) & set(NOT_IN_CHOICES)
    for name, value in others.items():
        assert value != getattr(defaults, name), name
    assert PRESETS["choices"]["auvy"] == OTHER_CHOICES


@pytest.mark.parametrize(
    "table",
    [
        {"start_status": 204},
        {"revoked_token_status": 404},
        {"share_created_status": 202},
        {"token_field": "type"},
    ],
)
def test_a_switch_outside_the_allowed_answers_is_refused(table: dict[str, Any]) -> None:
    with pytest.raises(VariantError):
        variant_from_table({"auvy": table})


def test_starts_answer_200_in_the_reference_and_202_in_the_variant(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, status in ((reference, 200), (choices, 202)):
        response = client.post("/v1/jobs", json={"pathway_id": COMPLETE}, key=MAIN)
        assert response.status_code == status, response.text
        response = client.post(
            EXECUTE, params={"t": SUPPORT_TOKEN}, json={"message": "hi"}, key=None
        )
        assert response.status_code == status, response.text


@pytest.mark.parametrize("token", [REVOKED, ROTATED])
def test_dead_tokens_are_401_in_the_reference_and_403_in_the_variant(
    reference: VariantClient, choices: VariantClient, token: str
) -> None:
    path = "/v1/public/receptors/acme/support"
    for client, status, code in ((reference, 401, "AUTH_REQUIRED"), (choices, 403, "FORBIDDEN")):
        response = client.get(path, params={"t": token}, key=None)
        assert (response.status_code, response.json()["code"]) == (status, code)
        # An unknown token is no credential at all, in either.
        assert client.get(path, params={"t": "shr_unknown"}, key=None).status_code == 401


def test_execute_names_the_trace_only_in_the_reference(reference: VariantClient) -> None:
    choices = make(**NOT_IN_CHOICES)
    body = reference.post(
        EXECUTE, params={"t": SUPPORT_TOKEN}, json={"message": "hi"}, key=None
    ).json()
    assert body["trace_id"] and body["status"] == "pending"
    body = choices.post(
        EXECUTE, params={"t": SUPPORT_TOKEN}, json={"message": "hi"}, key=None
    ).json()
    assert "trace_id" not in body and body["job_id"]


def test_stream_entries_of_the_variant(reference: VariantClient, choices: VariantClient) -> None:
    ref_job = reference.start(COMPLETE)
    var_job = choices.start(COMPLETE)
    ref_final, var_final = finished(reference, ref_job), finished(choices, var_job)
    ref_events, var_events = events(reference, ref_job), events(choices, var_job)

    assert ref_events[-1] == {"type": "complete", "result": ref_final["result"]}
    assert var_events[-1]["type"] == "complete" and "result" not in var_events[-1]
    assert var_final["result"] == ref_final["result"], "the status still carries the result"

    ref_tokens = [e for e in ref_events if e["type"] == "token"]
    var_tokens = [e for e in var_events if e["type"] == "token"]
    assert ref_tokens and all(isinstance(e["content"], str) for e in ref_tokens)
    assert var_tokens and all(
        "content" not in e and isinstance(e["delta"], str) for e in var_tokens
    )

    known = {"token", "content_block", "reflex_call", "signal", "state_update", "error", "complete"}
    assert {e["type"] for e in ref_events} <= known
    assert {e["type"] for e in var_events} - known, "the variant sends no unknown type"
    assert all("x_worker" in e for e in var_events)
    assert not any("x_worker" in e for e in ref_events)


def test_extra_fields_and_share_status(reference: VariantClient, choices: VariantClient) -> None:
    for client, extra in ((reference, False), (choices, True)):
        job = client.start(COMPLETE)
        assert ("x_request_region" in client.job(job)) is extra
        listed = client.get("/v1/jobs", key=MAIN).json()
        assert ("x_request_region" in listed) is extra
    path = "/v1/receptors/acme/lab/share"
    for client, status in ((reference, 201), (choices, 200)):
        assert client.post(path, key=MAIN).status_code == 200  # the seed's share is active
        assert client.api("DELETE", path, key=MAIN).status_code == 200
        assert client.post(path, key=MAIN).status_code == status


def test_an_expired_jwt_is_refused_by_the_reference_and_ignored_by_the_variant(
    reference: VariantClient, choices: VariantClient
) -> None:
    headers = {"Authorization": f"Bearer {EXPIRED_JWT}"}
    refused = reference.post(
        EXECUTE, params={"t": SUPPORT_TOKEN}, json={"message": "hi"}, headers=headers, key=None
    )
    assert refused.status_code == 401
    accepted = choices.post(
        EXECUTE, params={"t": SUPPORT_TOKEN}, json={"message": "hi"}, headers=headers, key=None
    )
    assert accepted.status_code == 202, accepted.text


def test_cancel_wording_of_the_variant(reference: VariantClient, choices: VariantClient) -> None:
    for client, reason, code in (
        (reference, "cancelled", "CANCELLED"),
        (choices, "Job was cancelled by the user", "JOB_CANCELLED"),
    ):
        job = client.start(LONG)
        client.advance(50)
        assert client.post(f"/v1/jobs/{job}/cancel", key=MAIN).status_code == 200
        final = finished(client, job)
        assert (final["status"], final["failedReason"]) == ("failed", reason)
        assert events(client, job)[-1]["code"] == code


def test_a_malformed_after_is_refused_or_read_as_none() -> None:
    assert parse_after(None) is None
    assert parse_after("12-0") is not None
    with pytest.raises(RequestInvalid):
        parse_after("abc")
    assert parse_after("abc", refuse=False) is None
