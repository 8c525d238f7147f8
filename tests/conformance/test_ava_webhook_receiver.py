"""The suite's AVA webhook receiver: it finds the job record and the event's name wherever a
sender puts them, and still refuses what the documents and FACTS.md rule out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.webhooks import WebhookReceiver, event_type, find_record, signature

SECRET = "whsec_test"
RECORD = {"id": "job_1", "worker_id": "wkr_1", "status": "completed", "output": {"ok": True}}


def now(offset_s: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("event", "where"),
    [
        ({"id": "evt_1", "type": "ava.job.completed", "created_at": "x", "data": RECORD}, "data"),
        ({"id": "evt_1", "event": "ava.job.completed", "created_at": "x", "job": RECORD}, "job"),
        ({"event": "ava.job.completed", "payload": {"job": RECORD}}, "payload.job"),
        ({**RECORD, "event": "ava.job.completed"}, ""),
    ],
)
def test_the_record_is_found_wherever_it_is(event: dict[str, Any], where: str) -> None:
    path, record = find_record(event)
    assert path == where and record is not None
    assert {k: record[k] for k in RECORD} == RECORD
    assert event_type(event) == "ava.job.completed"


def test_no_record_and_no_name_are_reported_as_missing() -> None:
    assert find_record({"data": {"id": "job_1"}}) == (None, None)
    assert find_record([RECORD]) == (None, None)
    assert event_type({"type": "completed", "other": 1}) is None


def deliver(receiver: WebhookReceiver, event: dict[str, Any], *, key: str = SECRET) -> int:
    body = json.dumps(event).encode()
    status, _ = receiver.accept("/hooks", signature(key, body), body)
    return status


def test_deliveries_are_indexed_by_the_job_whatever_the_shape() -> None:
    receiver = WebhookReceiver(SECRET)
    job = {**RECORD, "input": {"conformance_webhook": {"reject": 1}}}
    event = {"id": "evt_9", "event": "ava.job.completed", "created_at": now(), "job": job}
    assert deliver(receiver, event) == 503  # the record's input asked for one refusal
    assert deliver(receiver, event) == 200
    got = receiver.received("job_1")
    assert [r.answered for r in got] == [503, 200]
    assert {(r.event_id, r.event_type, r.record_at) for r in got} == {
        ("evt_9", "ava.job.completed", "job")
    }


def test_a_body_that_is_the_record_has_no_event_id_of_its_own() -> None:
    receiver = WebhookReceiver(SECRET)
    flat = {**RECORD, "event": "ava.job.completed", "created_at": now()}
    assert deliver(receiver, flat) == 200
    (got,) = receiver.received("job_1")
    assert got.event_id is None and got.record_at == ""


@pytest.mark.parametrize(
    ("event", "key"),
    [
        ({"type": "ava.job.completed", "created_at": now(), "data": RECORD}, "wrong"),
        ({"type": "ava.job.completed", "created_at": now(-400), "data": RECORD}, SECRET),
        ({"type": "ava.job.completed", "data": RECORD}, SECRET),
    ],
    ids=["bad-signature", "stale", "no-created_at"],
)
def test_unsigned_stale_or_undated_events_are_refused(event: dict[str, Any], key: str) -> None:
    receiver = WebhookReceiver(SECRET)
    assert deliver(receiver, event, key=key) == 400
    (got,) = receiver.received("job_1")
    assert got.problem
