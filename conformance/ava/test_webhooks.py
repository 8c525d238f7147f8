"""ava.job.completed and ava.job.failed events, as the suite's receiver got them.

These run only when the target can call the receiver (the profile's ava.webhooks); the receiver
checks each delivery's X-HLD-Signature-256 and its 5-minute window itself.

The document promises that "the event payload includes the full job record including output and
error", not where in the payload: the receiver finds the record wherever it is. A target may
declare where it puts it (`ava.webhooks.record_field`, a dotted path, "" for the body itself) and
which field names the event (`ava.webhooks.type_field`); the suite then holds it to that.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.clients.ava import TERMINAL, AvaClient, promised
from conformance.profile import TargetProfile
from conformance.webhooks import ReceiverClient

req = pytest.mark.req
EVENTS = {"completed": "ava.job.completed", "failed": "ava.job.failed"}


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("ava.job_timeout_s", 30))


def all_valid(deliveries: list[dict[str, Any]]) -> None:
    for delivery in deliveries:
        assert delivery["signature_ok"], f"bad X-HLD-Signature-256: {delivery['problem']}"
        assert delivery["fresh"], f"stale or missing created_at: {delivery['problem']}"


def finished_and_announced(
    ava: AvaClient, receiver: ReceiverClient, profile: TargetProfile, kind: str, status: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job_id = ava.start(profile.need(f"ava.workers.{kind}.id"), input={"case": kind})["id"]
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == status, final
    within = float(profile.get("ava.webhooks.delivery_within_s", 10))
    # Only the two documented events are judged; a target may announce more (started, ...).
    deliveries = receiver.wait_for(job_id, timeout_s=within, event_types=set(EVENTS.values()))
    all_valid(deliveries)
    return final, deliveries


@req(
    "ava.webhooks.completed",
    "ava.webhooks.failed",
    "ava.webhooks.full-record",
    "ava.webhooks.signed",
)
@pytest.mark.parametrize(("kind", "status"), [("complete", "completed"), ("fail", "failed")])
def test_a_finished_job_is_announced_with_its_record(
    ava: AvaClient, ava_receiver: ReceiverClient, profile: TargetProfile, kind: str, status: str
) -> None:
    final, deliveries = finished_and_announced(ava, ava_receiver, profile, kind, status)
    named = {d["event_type"] for d in deliveries}
    assert named == {EVENTS[status]}, f"a {status} job was announced as {sorted(map(str, named))}"
    type_field = profile.get("ava.webhooks.type_field")
    places = {d["record_at"] for d in deliveries}
    assert len(places) == 1, f"the record moves between deliveries: {places}"
    declared = profile.get("ava.webhooks.record_field")
    if declared is not None:
        assert places == {str(declared)}, f"the record is at {places}, the profile says {declared}"
    for delivery in deliveries:
        if type_field is not None:
            assert delivery["event"].get(str(type_field)) == EVENTS[status], delivery["event"]
        record = delivery["record"]
        assert isinstance(record, dict), "the event carries no job record (id, worker_id, status)"
        missing = [f for f in ("output", "error") if f not in record]
        assert not missing, f"the event's record lacks {missing}"
        assert promised(record) == promised(final), (
            "the event's record differs from the job's record",
            promised(record),
            promised(final),
        )
    key = "output" if status == "completed" else "error"
    assert deliveries[0]["record"][key] is not None, f"the event's record has no {key}"


@req("ava.webhooks.envelope")
def test_the_reference_sends_id_type_created_at_and_data(
    ava: AvaClient, ava_receiver: ReceiverClient, profile: TargetProfile
) -> None:
    _, deliveries = finished_and_announced(ava, ava_receiver, profile, "complete", "completed")
    event = deliveries[0]["event"]
    assert sorted(event) == ["created_at", "data", "id", "type"], sorted(event)
    assert event["type"] == "ava.job.completed" and deliveries[0]["record_at"] == "data"
    assert str(event["id"]).startswith("evt_"), event["id"]


@req("ava.webhooks.retry")
def test_a_refused_delivery_is_retried(
    ava: AvaClient, ava_receiver: ReceiverClient, profile: TargetProfile
) -> None:
    refusals = 2
    job_input = {"conformance_webhook": {"reject": refusals}}
    job_id = ava.start(profile.need("ava.workers.complete.id"), input=job_input)["id"]
    assert ava.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"
    within = float(profile.get("ava.webhooks.retry_within_s", 10))
    deliveries = ava_receiver.wait_for(job_id, timeout_s=within, event_types=set(EVENTS.values()))
    all_valid(deliveries)
    answers = [d["answered"] for d in deliveries]
    assert answers[:refusals] == [503] * refusals and 200 in answers, answers
    assert len({d["event_id"] for d in deliveries}) == 1, "a retry is a new event, not the same"
