"""ava.job.completed and ava.job.failed events, as the suite's receiver got them.

These run only when the target can call the receiver (the profile's ava.webhooks); the receiver
checks each delivery's X-HLD-Signature-256 and its 5-minute window itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.clients.ava import TERMINAL, AvaClient
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
    job_id = ava.start(profile.need(f"ava.workers.{kind}.id"), input={"case": kind})["id"]
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == status, final
    within = float(profile.get("ava.webhooks.delivery_within_s", 10))
    deliveries = ava_receiver.wait_for(job_id, timeout_s=within)
    all_valid(deliveries)
    accepted = [d for d in deliveries if d["answered"] == 200]
    event = accepted[0]["event"]
    assert event["type"] == EVENTS[status], f"a {status} job was announced as {event['type']}"
    assert {d["event_type"] for d in deliveries} == {EVENTS[status]}, deliveries
    assert event["data"] == final, "the event's record differs from the job's record"
    key = "output" if status == "completed" else "error"
    assert event["data"][key] is not None, f"the event's record has no {key}"


@req("ava.webhooks.retry", "ava.webhooks.signed")
def test_a_refused_delivery_is_retried(
    ava: AvaClient, ava_receiver: ReceiverClient, profile: TargetProfile
) -> None:
    refusals = 2
    job_input = {"conformance_webhook": {"reject": refusals}}
    job_id = ava.start(profile.need("ava.workers.complete.id"), input=job_input)["id"]
    assert ava.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "completed"
    within = float(profile.get("ava.webhooks.retry_within_s", 10))
    deliveries = ava_receiver.wait_for(job_id, timeout_s=within)
    all_valid(deliveries)
    answers = [d["answered"] for d in deliveries]
    assert answers[:refusals] == [503] * refusals and 200 in answers, answers
    assert len({d["event_id"] for d in deliveries}) == 1, "a retry is a new event, not the same"
