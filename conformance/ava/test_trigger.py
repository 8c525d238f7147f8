"""POST /v1/ava/jobs: the record it returns, its defaults, and what it rejects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conformance.checks import ava_error_envelope, body_of
from conformance.clients.ava import (
    RECORD_FIELDS,
    TRIGGER_STATUSES,
    AvaClient,
    invalid,
    parse_ts,
)
from conformance.profile import TargetProfile

req = pytest.mark.req


def worker(profile: TargetProfile, name: str) -> str:
    return str(profile.need(f"ava.workers.{name}.id"))


def nothing_created(ava: AvaClient, worker_id: str, marker: str) -> None:
    """A rejected trigger must not have queued a job anyway (found by its unique input)."""
    leaked = [
        j["id"]
        for j in ava.jobs(worker_id=worker_id)
        if isinstance(j.get("input"), dict) and j["input"].get("marker") == marker
    ]
    assert not leaked, f"a rejected trigger still created {leaked}"


@req("ava.jobs.trigger.response", "ava.jobs.get.record", "ava.access.identity")
def test_trigger_returns_the_queued_record(ava: AvaClient, profile: TargetProfile) -> None:
    worker_id = worker(profile, "complete")
    sent = {"incident_id": "inc_01hxyz", "channel": "#security-ops"}
    response = ava.trigger({"worker_id": worker_id, "priority": 2, "input": sent})
    record = ava.data(response, "trigger a job", TRIGGER_STATUSES)
    missing = [f for f in RECORD_FIELDS if f not in record]
    assert not missing, f"the record lacks {missing}"
    assert isinstance(record["id"], str) and record["id"]
    assert record["worker_id"] == worker_id
    assert record["tenant_id"] == profile.need("ava.identities.main.tenant_id")
    assert record["triggered_by"] == profile.need("ava.identities.main.user_id")
    assert (record["priority"], record["input"], record["trigger"]) == (2, sent, "manual")
    assert record["status"] == "queued", "the trigger returns before execution starts"
    parse_ts(record["created_at"])
    started = {f: record[f] for f in ("started_at", "completed_at", "duration_ms", "output")}
    assert set(started.values()) == {None}, started
    assert record["error"] is None
    polled = ava.job(record["id"])
    assert polled["id"] == record["id"] and polled["input"] == sent
    assert polled["created_at"] == record["created_at"]


@req("ava.jobs.trigger.status-201")
def test_the_reference_answers_a_trigger_201(ava: AvaClient, profile: TargetProfile) -> None:
    response = ava.trigger({"worker_id": worker(profile, "complete")})
    assert response.status_code == 201, f"HTTP {response.status_code}: {response.text[:200]}"
    assert body_of(response)["data"]["status"] == "queued"


@req("ava.jobs.trigger.trigger-default", "ava.jobs.trigger.priority-default")
def test_trigger_and_priority_default_to_manual_and_5(
    ava: AvaClient, profile: TargetProfile
) -> None:
    record = ava.start(worker(profile, "complete"))
    assert record["trigger"] == "manual"
    assert record["priority"] == 5
    assert ava.job(record["id"])["priority"] == 5


@req("ava.jobs.trigger.input")
def test_input_is_kept(ava: AvaClient, profile: TargetProfile) -> None:
    nested = {"a": [1, 2, {"b": None}], "unicode": "ünïcødé ✓", "n": 1.5}
    assert ava.job(ava.start(worker(profile, "complete"), input=nested)["id"])["input"] == nested
    # The document gives no default for an omitted input: none (null) or an empty payload.
    assert ava.start(worker(profile, "complete"))["input"] in ({}, None)


@req("ava.jobs.trigger.input-default-empty")
def test_the_reference_records_an_omitted_input_as_an_empty_object(
    ava: AvaClient, profile: TargetProfile
) -> None:
    assert ava.start(worker(profile, "complete"))["input"] == {}


@req("ava.jobs.trigger.input")
@pytest.mark.parametrize("value", [[1, 2], "text", 5], ids=["array", "string", "number"])
def test_input_that_is_not_an_object_is_rejected(
    ava: AvaClient, profile: TargetProfile, value: Any
) -> None:
    invalid(ava.trigger({"worker_id": worker(profile, "complete"), "input": value}), "input")


# "Required: No" says the field may be left out; it is silent on an explicit null. A server may
# reject it (it is not an object / not an integer) or read it as omitted (the documented default).
NULLABLE: dict[str, tuple[Any, ...]] = {"input": ({}, None), "priority": (5,)}


@req("ava.jobs.trigger.optional-null")
@pytest.mark.parametrize("name", sorted(NULLABLE))
def test_an_explicit_null_is_rejected_or_read_as_omitted(
    ava: AvaClient, profile: TargetProfile, name: str
) -> None:
    response = ava.trigger({"worker_id": worker(profile, "complete"), name: None})
    if response.status_code in TRIGGER_STATUSES:
        record = ava.data(response, f"trigger with {name}: null", TRIGGER_STATUSES)
        assert record[name] in NULLABLE[name], (
            f"{name}: null was accepted but recorded as {record[name]!r}, not as omitted"
        )
        assert ava.job(record["id"])[name] == record[name]
    else:
        invalid(response, name)


@req("ava.jobs.trigger.null-rejected")
@pytest.mark.parametrize("name", sorted(NULLABLE))
def test_the_reference_rejects_an_explicit_null(
    ava: AvaClient, profile: TargetProfile, name: str
) -> None:
    response = ava.trigger({"worker_id": worker(profile, "complete"), name: None})
    ava_error_envelope(response, 400, "validation_error", name)


@req("ava.jobs.trigger.trigger-values")
@pytest.mark.parametrize("trigger", ["manual", "scheduled", "webhook", "event"])
def test_each_trigger_value_is_recorded(
    ava: AvaClient, profile: TargetProfile, trigger: str
) -> None:
    record = ava.start(worker(profile, "complete"), trigger=trigger)
    assert record["trigger"] == trigger
    assert ava.job(record["id"])["trigger"] == trigger


@req("ava.jobs.trigger.trigger-values")
@pytest.mark.parametrize("trigger", ["cron", "MANUAL", "", 1])
def test_other_trigger_values_are_rejected(
    ava: AvaClient, profile: TargetProfile, trigger: Any
) -> None:
    marker = uuid.uuid4().hex
    body = {
        "worker_id": worker(profile, "complete"),
        "trigger": trigger,
        "input": {"marker": marker},
    }
    invalid(ava.trigger(body), "trigger")
    nothing_created(ava, worker(profile, "complete"), marker)


@req("ava.jobs.trigger.priority-bounds")
@pytest.mark.parametrize("priority", [1, 10])
def test_priority_bounds_are_accepted(
    ava: AvaClient, profile: TargetProfile, priority: int
) -> None:
    assert ava.start(worker(profile, "complete"), priority=priority)["priority"] == priority


@req("ava.jobs.trigger.priority-bounds")
@pytest.mark.parametrize(
    "priority",
    [0, 11, -1, 100, "5", 5.5, True, [5]],
    ids=["0", "11", "-1", "100", "string", "fraction", "boolean", "array"],
)
def test_priority_out_of_range_or_not_an_integer_is_rejected(
    ava: AvaClient, profile: TargetProfile, priority: Any
) -> None:
    marker = uuid.uuid4().hex
    body = {
        "worker_id": worker(profile, "complete"),
        "priority": priority,
        "input": {"marker": marker},
    }
    invalid(ava.trigger(body), "priority")
    nothing_created(ava, worker(profile, "complete"), marker)


@req("ava.jobs.trigger.worker-required")
@pytest.mark.parametrize(
    "body",
    [{}, {"worker_id": ""}, {"worker_id": 7}, {"worker_id": None}, {"input": {"a": 1}}],
    ids=["empty", "blank", "number", "null", "input-only"],
)
def test_worker_id_is_required(ava: AvaClient, body: dict[str, Any]) -> None:
    invalid(ava.trigger(body), "worker_id")


def unknown_worker_refused(response: Any) -> tuple[int, str]:
    """FACTS.md allows either answer: resource_not_found 404, or validation_error naming
    worker_id. Returns (status, code) so callers can compare cases."""
    if response.status_code == 404:
        error = ava_error_envelope(response, 404, "resource_not_found")
    else:
        error = invalid(response, "worker_id")
    return response.status_code, str(error["code"])


@req("ava.jobs.trigger.unknown-worker")
def test_unknown_worker_is_refused(ava: AvaClient) -> None:
    unknown_worker_refused(ava.trigger({"worker_id": f"wkr_unknown_{uuid.uuid4().hex[:12]}"}))


@req("ava.jobs.trigger.unknown-worker", "ava.access.tenant-isolation")
def test_another_tenants_worker_is_refused_like_an_unknown_one(
    ava: AvaClient, profile: TargetProfile
) -> None:
    other = unknown_worker_refused(ava.trigger({"worker_id": profile.need("ava.other_worker_id")}))
    unknown = unknown_worker_refused(ava.trigger({"worker_id": f"wkr_unknown_{uuid.uuid4().hex}"}))
    # Answering differently would tell a caller which ids exist in other tenants.
    assert other == unknown, f"another tenant's worker gets {other}, an unknown one {unknown}"


@req("ava.jobs.trigger.unknown-worker-404")
def test_the_reference_answers_an_unknown_worker_404(ava: AvaClient) -> None:
    response = ava.trigger({"worker_id": f"wkr_unknown_{uuid.uuid4().hex[:12]}"})
    ava_error_envelope(response, 404, "resource_not_found")


@req("ava.jobs.trigger.scheduled-at-format")
@pytest.mark.parametrize(
    "value",
    ["tomorrow", "2025-13-01T00:00:00Z", "2025-06-01", "2025-06-31T10:00:00Z", 1717200000, ""],
    ids=["word", "month-13", "date-only", "june-31", "number", "empty"],
)
def test_scheduled_at_must_be_a_date_time(
    ava: AvaClient, profile: TargetProfile, value: Any
) -> None:
    body = {"worker_id": worker(profile, "complete"), "scheduled_at": value}
    # "ISO 8601 datetime": a date alone (2025-06-01) is ISO 8601 but not a datetime.
    invalid(ava.trigger(body), "scheduled_at")


@req("ava.jobs.trigger.body")
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"worker_id": "wkr"', "application/json"),
        (b'"wkr"', "application/json"),
    ],
    ids=["empty", "not-json", "array", "truncated", "string"],
)
def test_a_body_that_is_not_a_json_object_is_rejected(
    ava: AvaClient, content: bytes, content_type: str
) -> None:
    response = ava.api.request(
        "triggerJob",
        "POST",
        "/v1/ava/jobs",
        content=content,
        headers={"Content-Type": content_type},
    )
    invalid(response)
