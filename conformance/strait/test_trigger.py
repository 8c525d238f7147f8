"""POST /v1/jobs/{jobID}/trigger (FACTS.md's way in): the new run, idempotency keys, bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance.checks import body_of, status_is, strait_error_envelope
from conformance.clients.strait import (
    StraitClient,
    from_now,
    new_batch,
    nonce,
    parse_ts,
    refused,
)

req = pytest.mark.req
Job = Callable[[str], str]


@req("strait.trigger.create")
def test_trigger_creates_a_queued_run_with_what_was_sent(
    strait: StraitClient, strait_job: Job
) -> None:
    batch = new_batch()
    sent = {
        "payload": {"order": {"id": 7, "lines": [1, 2]}, "nonce": nonce()},
        "metadata": {"team": "billing"},
        "tags": {"env": "conformance"},
        "priority": 7,
        "batch_id": batch,
    }
    response = strait.trigger(strait_job("complete"), sent)
    status_is(response, 201)
    run = body_of(response)
    # Live and not delayed: queued, or already picked up by a fast target (FACTS.md's table).
    assert run["status"] in {"queued", "dequeued", "executing"}, f"a new run is {run['status']}"
    assert run["attempt"] == 1 and run["triggered_by"] == "manual", run
    assert run["job_id"] == strait_job("complete") and run["project_id"] == strait.project_id
    for name, value in sent.items():
        assert run[name] == value, f"{name}: sent {value!r}, the run has {run[name]!r}"
    assert strait.run(run["id"])["payload"] == sent["payload"]
    strait.wait_for(run["id"], {"completed"})


@req("strait.decision.trigger-queued")
def test_the_reference_answers_a_trigger_with_a_queued_run(
    strait: StraitClient, strait_job: Job
) -> None:
    response = strait.trigger(strait_job("complete"), {})
    status_is(response, 201)
    run = body_of(response)
    assert run["status"] == "queued", f"a run triggered for now is {run['status']}"
    strait.wait_for(run["id"], {"completed"})


@req("strait.decision.validation-400")
def test_the_reference_refuses_an_invalid_trigger_with_400(
    strait: StraitClient, strait_job: Job
) -> None:
    response = strait.trigger(strait_job("complete"), {"priority": 11, "batch_id": new_batch()})
    strait_error_envelope(response, 400, "bad_request")
    response = strait.bulk_cancel({"run_ids": []})
    strait_error_envelope(response, 400, "bad_request")


@req("strait.trigger.create")
def test_trigger_with_a_later_scheduled_at_is_delayed(
    strait: StraitClient, strait_job: Job
) -> None:
    at = from_now(3600)
    run = strait.start(strait_job("complete"), scheduled_at=at)
    try:
        assert run["status"] == "delayed", f"a run scheduled an hour ahead is {run['status']}"
        assert parse_ts(run.get("scheduled_at")) == parse_ts(at)
        assert run["attempt"] == 1 and run["triggered_by"] == "manual"
        assert strait.run(run["id"])["status"] == "delayed"
    finally:
        strait.cancel(run["id"])


@req("strait.trigger.idempotency")
def test_same_idempotency_key_while_live_returns_the_same_run(
    strait: StraitClient, strait_job: Job
) -> None:
    key = f"conf-{nonce()}"
    first = strait.held(strait_job("complete"), payload={"n": 1}, idempotency_key=key)
    try:
        assert first.get("idempotency_key") == key, "the run does not show its Idempotency-Key"
        again = strait.trigger(strait_job("complete"), {"payload": {"n": 2}}, idempotency_key=key)
        status_is(again, 200)
        hit = body_of(again)
        assert hit["id"] == first["id"], "a second trigger with the same key made a new run"
        assert hit.get("idempotency_hit") is True, "idempotency_hit is not true on a hit"
        assert hit["payload"] == {"n": 1}, "the hit changed the earlier run's payload"
        assert strait.run(first["id"])["idempotency_key"] == key
    finally:
        strait.cancel(first["id"])


@req("strait.trigger.idempotency")
def test_different_idempotency_keys_make_different_runs(
    strait: StraitClient, strait_job: Job
) -> None:
    a = strait.trigger(strait_job("complete"), idempotency_key=f"conf-{nonce()}")
    b = strait.trigger(strait_job("complete"), idempotency_key=f"conf-{nonce()}")
    status_is(a, 201)
    status_is(b, 201)
    assert body_of(a)["id"] != body_of(b)["id"]
    assert body_of(a).get("idempotency_hit") in (None, False)


@req("strait.trigger.invalid")
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"priority": 11}, id="priority-11"),
        pytest.param({"priority": -1}, id="priority-negative"),
        pytest.param({"priority": "high"}, id="priority-string"),
        pytest.param({"payload": "not an object"}, id="payload-string"),
        pytest.param({"payload": [1, 2]}, id="payload-array"),
        pytest.param({"scheduled_at": "tomorrow"}, id="scheduled_at-text"),
        pytest.param({"scheduled_at": "2026-13-01T00:00:00Z"}, id="scheduled_at-month-13"),
    ],
)
def test_invalid_trigger_bodies_are_400(
    strait: StraitClient, strait_job: Job, body: dict[str, object]
) -> None:
    batch = new_batch()
    response = strait.trigger(strait_job("complete"), {**body, "batch_id": batch})
    refused(response)
    assert strait.runs(batch_id=batch) == [], "a refused trigger created a run"


@req("strait.trigger.invalid")
def test_idempotency_key_over_256_characters_is_400(strait: StraitClient, strait_job: Job) -> None:
    batch = new_batch()
    response = strait.trigger(
        strait_job("complete"), {"batch_id": batch}, idempotency_key="k" * 257
    )
    refused(response)
    assert strait.runs(batch_id=batch) == [], "a refused trigger created a run"
    ok = strait.trigger(strait_job("complete"), {"batch_id": batch}, idempotency_key="k" * 256)
    status_is(ok, (200, 201))


@req("strait.trigger.invalid")
def test_unknown_job_is_404(strait: StraitClient) -> None:
    strait_error_envelope(strait.trigger("job_no_such_job_0000"), 404, "not_found")
