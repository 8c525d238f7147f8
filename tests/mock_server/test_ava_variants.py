"""AVA variants (mock_server.variants.ava): each switch makes the other answer the documents
allow, and the reference (every switch at its default) keeps its own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.app import create_app
from mock_server.clock import ManualClock
from mock_server.errors import RequestError
from mock_server.profile import ServerProfile
from mock_server.variants import PRESETS, VariantError, variant_from_table
from mock_server.variants.ava import OTHER_CHOICES, AvaVariant
from mock_server.world import World

from .test_ava_app import (
    COMPLETE,
    GLOBEX,
    LOGS,
    LONG,
    PROFILE,
    STEP_MS,
    UNKNOWN_JOB,
    Client,
    identity,
)

JOBS = "/v1/ava/jobs"


class VariantClient(Client):
    """Checks every answer against openapi/ava.yaml: the reference with its decisions
    (x-reference-only), a variant only against what the documents promise."""

    def __init__(self, app: Starlette, decisions: bool) -> None:
        super().__init__(app)
        self.decisions = decisions

    def ava(
        self, method: str, path: str, who: Mapping[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        response = self.request(
            method, "/ava" + path, headers=identity() if who is None else who, **kw
        )
        world: World = self.app.state.world
        try:
            operation, _ = world.specs["ava"].match(method, path.partition("?")[0])
        except RequestError:
            return response
        body = response.json() if response.content else None
        spec = ResponseSpec.for_api("ava", decisions=self.decisions)
        spec.check(operation.operation_id, response.status_code, response.headers, body)
        return response

    def start(self, worker: str = COMPLETE, **body: Any) -> dict[str, Any]:
        response = self.ava("POST", JOBS, json={"worker_id": worker, **body})
        assert response.status_code in (201, 202), response.text
        record: dict[str, Any] = response.json()["data"]
        return record


def make(**switches: Any) -> VariantClient:
    profile = ServerProfile.from_dict({**PROFILE, "variant": {"ava": switches}})
    app: Starlette = create_app(profile, clock=ManualClock())
    world: World = app.state.world
    world.reset()
    return VariantClient(app, decisions=not switches)


@pytest.fixture(scope="module")
def _reference() -> VariantClient:
    return make()


@pytest.fixture(scope="module")
def _choices() -> VariantClient:
    return make(**OTHER_CHOICES)


def fresh(client: VariantClient) -> VariantClient:
    world: World = client.app.state.world
    world.reset()
    return client


@pytest.fixture
def reference(_reference: VariantClient) -> VariantClient:
    return fresh(_reference)


@pytest.fixture
def choices(_choices: VariantClient) -> VariantClient:
    return fresh(_choices)


def error_of(response: httpx.Response) -> dict[str, Any]:
    err: dict[str, Any] = response.json()["error"]
    return err


def test_every_switch_has_its_other_answer_in_the_choices_preset() -> None:
    defaults = AvaVariant()
    assert set(OTHER_CHOICES) == set(vars(defaults))
    for name, value in OTHER_CHOICES.items():
        assert value != getattr(defaults, name), name
    assert PRESETS["choices"]["ava"] == OTHER_CHOICES


@pytest.mark.parametrize(
    "table",
    [
        {"trigger_status": 200},
        {"validation_status": 409},
        {"cancel_status": 202},
        {"missing_role_status": 404},
        {"missing_identity_status": 400},
        {"other_tenant_status": 401},
        {"webhook_shape": "flat"},
        {"list_page_size": -1},
        {"list_order": "random"},
        {"log_limit_over_max": "ignore"},
        {"unknown_worker": "gone"},
    ],
)
def test_a_switch_outside_the_allowed_answers_is_refused(table: dict[str, Any]) -> None:
    with pytest.raises(VariantError):
        variant_from_table({"ava": table})


def test_trigger_is_201_in_the_reference_and_202_in_the_variant(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, status in ((reference, 201), (choices, 202)):
        response = client.ava("POST", JOBS, json={"worker_id": COMPLETE})
        assert response.status_code == status, response.text
        assert response.json()["data"]["status"] == "queued"


def test_validation_errors_are_400_or_422(reference: VariantClient, choices: VariantClient) -> None:
    for client, status in ((reference, 400), (choices, 422)):
        response = client.ava("POST", JOBS, json={"worker_id": COMPLETE, "priority": 11})
        assert response.status_code == status, response.text
        assert error_of(response)["code"] == "validation_error"
        assert "priority" in error_of(response)["fields"]


def test_cancel_answers_and_completed_at_of_a_cancelled_job(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client in (reference, choices):
        job_id = client.start(LONG)["id"]
        client.advance(5 * STEP_MS)
        assert client.job(job_id)["status"] == "running"
        response = client.ava("POST", f"{JOBS}/{job_id}/cancel")
        final = client.job(job_id)
        assert final["status"] == "cancelled" and final["started_at"] is not None
        if client is reference:
            assert response.status_code == 200 and response.json()["data"]["id"] == job_id
            assert final["completed_at"] is not None and final["duration_ms"] is not None
        else:
            assert response.status_code == 204 and response.content == b""
            assert final["completed_at"] is None and final["duration_ms"] is None


def test_missing_role_identity_and_other_tenants_jobs(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, role, ident, other in ((reference, 403, 401, 404), (choices, 401, 403, 403)):
        assert client.ava("GET", JOBS, identity(role=None)).status_code == role
        assert client.ava("GET", JOBS, identity(user=None)).status_code == ident
        assert client.ava("GET", JOBS, identity(tenant="ten_nobody")).status_code == ident
        job_id = client.start()["id"]
        assert client.ava("GET", f"{JOBS}/{job_id}", identity(tenant=GLOBEX)).status_code == other
        # A job that does not exist at all stays 404 either way.
        assert client.ava("GET", f"{JOBS}/{UNKNOWN_JOB}").status_code == 404
        # An unknown role still may not write (FACTS.md: tenant-system-admin or higher).
        response = client.ava("POST", JOBS, identity(role="galactic-emperor"), json={})
        assert response.status_code == 403


def test_unknown_worker_is_404_or_a_validation_error(
    reference: VariantClient, choices: VariantClient
) -> None:
    assert reference.ava("POST", JOBS, json={"worker_id": "wkr_nope"}).status_code == 404
    response = choices.ava("POST", JOBS, json={"worker_id": "wkr_nope"})
    assert response.status_code == 422 and "worker_id" in error_of(response)["fields"]


def test_explicit_null_is_rejected_or_read_as_omitted(
    reference: VariantClient, choices: VariantClient
) -> None:
    body = {"worker_id": COMPLETE, "input": None, "priority": None}
    assert reference.ava("POST", JOBS, json=body).status_code == 400
    record = choices.start(input=None, priority=None)
    assert (record["input"], record["priority"]) == ({}, 5)
    # Not a null: still judged by the schema.
    assert choices.ava("POST", JOBS, json={"worker_id": COMPLETE, "input": 5}).status_code == 422


def test_reading_nulls_as_omitted_survives_a_body_nested_too_deeply(choices: VariantClient) -> None:
    """The variant reads the body before the validated pipeline does: a body too deep for the
    JSON parser is left for the pipeline to refuse, never a 500."""
    deep = '{"worker_id": "w", "input": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = choices.request(
        "POST",
        "/ava" + JOBS,
        headers={**identity(), "content-type": "application/json"},
        content=deep.encode(),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


def pages(client: VariantClient, params: dict[str, str]) -> list[list[str]]:
    found = []
    query = dict(params)
    for _ in range(20):
        body = client.ava("GET", JOBS, params=query).json()
        found.append([j["id"] for j in body["data"]])
        if not body.get("has_more"):
            assert body.get("next_cursor") is None
            return found
        query = {**params, "cursor": body["next_cursor"]}
    raise AssertionError("the pages never end")


def test_lists_page_by_cursor_and_order_oldest_first_in_the_variant() -> None:
    client = make(list_page_size=2, list_order="oldest")
    made = []
    for _ in range(5):
        made.append(client.start(trigger="event")["id"])
        client.advance(1)
    got = pages(client, {"filter[trigger]": "event"})
    assert got == [made[0:2], made[2:4], made[4:5]]
    # A job created between two page reads does not shift the later pages.
    first = client.ava("GET", JOBS, params={"filter[trigger]": "event"}).json()
    client.start(trigger="event")
    second = client.ava(
        "GET", JOBS, params={"filter[trigger]": "event", "cursor": first["next_cursor"]}
    ).json()
    assert [j["id"] for j in second["data"]] == made[2:4]
    bad = client.ava("GET", JOBS, params={"cursor": "nonsense"})
    assert bad.status_code == 400 and "cursor" in error_of(bad)["fields"]


def test_reference_lists_one_page_newest_first(reference: VariantClient) -> None:
    made = []
    for _ in range(3):
        made.append(reference.start(trigger="event")["id"])
        reference.advance(1)
    body = reference.ava("GET", JOBS, params={"filter[trigger]": "event"}).json()
    assert set(body) == {"data"}
    assert [j["id"] for j in body["data"]] == made[::-1]


def test_bounds_date_only_and_exclusive(reference: VariantClient, choices: VariantClient) -> None:
    for client in (reference, choices):
        record = client.start()
        at = record["created_at"]
        created = datetime.fromisoformat(at.replace("Z", "+00:00")).date()
        day = (created - timedelta(days=1)).isoformat()
        next_day = (created + timedelta(days=1)).isoformat()
        inclusive = client.ava("GET", JOBS, params={"filter[created_after]": at}).json()["data"]
        listed = record["id"] in {j["id"] for j in inclusive}
        dated = client.ava("GET", JOBS, params={"filter[created_after]": day})
        if client is reference:
            assert listed, "the reference's bounds are inclusive"
            assert dated.status_code == 400
        else:
            assert not listed, "the variant's bounds are exclusive"
            assert dated.status_code == 200
            assert record["id"] in {j["id"] for j in dated.json()["data"]}
            before = client.ava("GET", JOBS, params={"filter[created_before]": day}).json()
            assert record["id"] not in {j["id"] for j in before["data"]}
            later = client.ava("GET", JOBS, params={"filter[created_before]": next_day}).json()
            assert record["id"] in {j["id"] for j in later["data"]}


def test_logs_limit_over_500_and_level_filter(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client in (reference, choices):
        job_id = client.start(LOGS)["id"]
        client.advance(50 * STEP_MS)
        assert client.job(job_id)["status"] == "completed"
        over = client.ava("GET", f"{JOBS}/{job_id}/logs", params={"limit": "501"})
        query = {"filter[level]": "warn", "limit": "500"}
        warn = client.ava("GET", f"{JOBS}/{job_id}/logs", params=query)
        levels = {line["level"] for line in warn.json()["data"]["logs"]}
        if client is reference:
            assert over.status_code == 400 and "limit" in error_of(over)["fields"]
            assert levels == {"warn"}
        else:
            assert over.status_code == 200 and len(over.json()["data"]["logs"]) == 500
            assert levels == {"warn", "error"}


def test_webhook_shapes(reference: VariantClient, choices: VariantClient) -> None:
    for client, keys in (
        (reference, {"id", "type", "created_at", "data"}),
        (choices, {"id", "event", "created_at", "job"}),
    ):
        job_id = client.start()["id"]
        client.advance(10 * STEP_MS)
        world: World = client.app.state.world
        sent = world.ava_outbox.deliveries(job_id)
        (delivery,) = [d for d in sent if d.event_type == "ava.job.completed"]
        extra = sorted(d.event_type for d in sent if d is not delivery)
        assert extra == ([] if client is reference else ["ava.job.started"])
        event = json.loads(delivery.body)
        assert set(event) == keys
        record = event.get("data") or event.get("job")
        assert record["id"] == job_id and record["status"] == "completed"
        assert "ava.job.completed" in (event.get("type"), event.get("event"))


def test_a_cancelled_job_is_announced_only_by_the_variant(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, expected in ((reference, []), (choices, ["ava.job.cancelled"])):
        job_id = client.start(scheduled_at="2999-01-01T00:00:00Z")["id"]
        assert client.ava("POST", f"{JOBS}/{job_id}/cancel").status_code in (200, 204)
        world: World = client.app.state.world
        assert [d.event_type for d in world.ava_outbox.deliveries(job_id)] == expected


def test_extra_fields_only_in_the_variant(reference: VariantClient, choices: VariantClient) -> None:
    plain = reference.start()
    extra = choices.start()
    assert "x_vendor" not in plain and "updated_at" not in plain
    assert {"x_vendor", "updated_at"} <= set(extra)
    body = choices.ava("GET", JOBS).json()
    assert "meta" in body
