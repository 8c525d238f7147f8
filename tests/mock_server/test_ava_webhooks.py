"""Webhook deliveries: signing, exponential backoff on the engine's clock, nothing ever lost.

The outbox is driven by a `Dispatcher` with a fake sender and a manual clock, so every retry time
is exact and no test sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from mock_server.clock import ManualClock, iso
from mock_server.model.ava import COMPLETED_EVENT, AvaModel, Settings, Tenant, Worker
from mock_server.model.engine import Engine
from mock_server.model.errors import IllegalTransition, NotFound
from mock_server.model.outbox import (
    LOST,
    OUTBOX_KEY,
    SIGNATURE_HEADER,
    Delivery,
    Outbox,
    RetryPolicy,
    render_delivery,
    sign,
)
from mock_server.model.script import Complete
from mock_server.model.store import MemoryRecords
from mock_server.webhooks import Dispatcher

SECRET = "whsec_test"
URL = "http://hooks.test/ava"


@dataclass
class FakeSender:
    """Answers from a script of status codes (or exceptions), then 200; records every call."""

    answers: list[int | Exception] = field(default_factory=list)
    calls: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        self.calls.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Rig:
    clock: ManualClock
    engine: Engine
    outbox: Outbox
    sender: FakeSender
    dispatcher: Dispatcher

    def pump(self) -> int:
        return asyncio.run(self.dispatcher.pump())

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)
        self.engine.run_due()


def rig(*answers: int | Exception, base_ms: int = 100, max_attempts: int = 4) -> Rig:
    clock = ManualClock()
    engine = Engine(clock)
    outbox = Outbox(engine, RetryPolicy(base_ms, max_attempts))
    outbox.subscribe(URL, SECRET)
    sender = FakeSender(list(answers))
    return Rig(clock, engine, outbox, sender, Dispatcher(engine, outbox, sender))


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == f"sha256={expected}"


def test_an_event_is_signed_and_carries_the_record() -> None:
    r = rig()
    r.outbox.publish(COMPLETED_EVENT, "job_1", {"id": "job_1", "output": {"ok": True}}, 5)
    assert r.pump() == 1
    url, body, headers = r.sender.calls[0]
    assert url == URL
    assert headers[SIGNATURE_HEADER] == sign(SECRET, body)
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["type"] == COMPLETED_EVENT and event["created_at"] == iso(5)
    assert event["data"] == {"id": "job_1", "output": {"ok": True}}
    assert event["id"].startswith("evt_")
    (delivery,) = r.outbox.deliveries()
    assert delivery.state == "delivered" and delivery.delivered_ms == r.engine.now()


def test_without_endpoints_nothing_is_queued() -> None:
    r = rig()
    r.outbox.clear_endpoints()
    assert r.outbox.publish(COMPLETED_EVENT, "job_1", {}, 0) == []
    assert r.pump() == 0


def test_failures_are_retried_with_exponential_backoff() -> None:
    r = rig(500, 503, ConnectionError("refused"), base_ms=100, max_attempts=5)
    r.outbox.publish(COMPLETED_EVENT, "job_1", {"id": "job_1"}, r.engine.now())
    start = r.engine.now()
    assert r.pump() == 1
    for wait in (100, 200, 400):
        r.advance(wait - 1)
        assert r.pump() == 0, "retried before its time"
        r.advance(1)
        assert r.pump() == 1
    (delivery,) = r.outbox.deliveries()
    assert delivery.state == "delivered"
    assert [a.at_ms - start for a in delivery.attempts] == [0, 100, 300, 700]
    assert [a.status_code for a in delivery.attempts] == [500, 503, None, 200]
    assert "refused" in (delivery.attempts[2].error or "")
    bodies = {body for _, body, _ in r.sender.calls}
    assert len(bodies) == 1, "a retry must send the same bytes (same event id, same signature)"


def test_a_delivery_out_of_attempts_is_kept_and_can_be_redelivered() -> None:
    r = rig(500, 500, 500, base_ms=10, max_attempts=3)
    r.outbox.publish(COMPLETED_EVENT, "job_1", {"id": "job_1"}, r.engine.now())
    r.pump()
    r.advance(10)
    r.pump()
    r.advance(20)
    r.pump()
    (delivery,) = r.outbox.deliveries()
    assert delivery.state == "failed" and delivery.next_attempt_ms is None
    r.advance(1_000_000)
    assert r.pump() == 0, "a failed delivery is not retried on its own"
    assert r.outbox.deliveries("job_1") == [delivery], "failed deliveries are never dropped"
    shown = render_delivery(delivery)
    assert shown["state"] == "failed" and len(shown["attempts"]) == 3
    assert SECRET not in json.dumps(shown)
    r.outbox.redeliver(delivery.id, r.engine.now())
    assert r.pump() == 1
    assert r.outbox.deliveries()[0].state == "delivered" and len(delivery.attempts) == 4
    with pytest.raises(IllegalTransition):
        r.outbox.redeliver(delivery.id, r.engine.now())
    with pytest.raises(NotFound):
        r.outbox.redeliver("dlv_nope", r.engine.now())


def test_each_endpoint_gets_its_own_delivery_and_signature() -> None:
    r = rig(500)
    r.outbox.subscribe("http://other.test/hook", "another-secret")
    r.outbox.subscribe(URL, SECRET)  # the same URL again replaces, never doubles
    r.outbox.publish(COMPLETED_EVENT, "job_1", {"id": "job_1"}, 0)
    assert r.pump() == 2
    signatures = {url: headers[SIGNATURE_HEADER] for url, _, headers in r.sender.calls}
    body = r.sender.calls[0][1]
    assert signatures == {
        URL: sign(SECRET, body),
        "http://other.test/hook": sign("another-secret", body),
    }
    states = sorted(d.state for d in r.outbox.deliveries())
    assert states == ["delivered", "pending"]


def test_a_report_for_a_cleared_delivery_is_ignored() -> None:
    r = rig()
    (delivery,) = r.outbox.publish(COMPLETED_EVENT, "job_1", {}, 0)
    r.outbox.take_due(0)
    r.outbox.clear()
    assert r.outbox.report(delivery.id, 1, status_code=200) is None


def test_the_run_loop_delivers_when_the_engine_says_so() -> None:
    """Dispatcher.run sleeps on the outbox key; a retry wakes it through the engine's timers."""
    clock = ManualClock()
    engine = Engine(clock)
    outbox = Outbox(engine, RetryPolicy(50, 3))
    outbox.subscribe(URL, SECRET)
    model = AvaModel(engine, Settings(step_ms=10), outbox=outbox)
    model.secret = "s"
    model.add_tenant(Tenant("t", "t"))
    model.add_worker(Worker("w", "t", "w", (Complete({"ok": True}),)))
    sender = FakeSender([500])

    async def scenario() -> None:
        task = asyncio.create_task(Dispatcher(engine, outbox, sender).run())
        await asyncio.sleep(0)
        assert engine.subscribers(OUTBOX_KEY) == 1
        job = model.trigger(model.authenticate("s", "t", "u", "tenant-system-admin"), "w")
        for _ in range(3):
            engine.run_due()
            await asyncio.sleep(0)
        assert job.status.value == "completed"
        assert len(sender.calls) == 1
        clock.advance(50)
        engine.run_due()
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(sender.calls) == 2
        assert [d.state for d in outbox.deliveries(job.id)] == ["delivered"]
        event = json.loads(sender.calls[1][1])
        assert event["data"]["status"] == "completed" and event["data"]["output"] == {"ok": True}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.subscribers(OUTBOX_KEY) == 0

    asyncio.run(scenario())


def test_backoff_doubles() -> None:
    policy = RetryPolicy(1_000, 6)
    assert [policy.delay_ms(n) for n in range(1, 6)] == [1_000, 2_000, 4_000, 8_000, 16_000]


def leased_outbox(max_attempts: int = 4) -> tuple[ManualClock, Outbox]:
    clock = ManualClock()
    outbox = Outbox(Engine(clock), RetryPolicy(100, max_attempts))
    outbox.subscribe(URL, SECRET)
    outbox.publish("job.completed", "job_1", {"id": "job_1"}, clock.now_ms())
    return clock, outbox


def test_a_delivery_whose_sender_died_is_retried_when_its_lease_runs_out() -> None:
    clock, outbox = leased_outbox()
    (taken,) = outbox.take_due(clock.now_ms(), lease_ms=1_000)
    clock.advance(999)
    assert outbox.take_due(clock.now_ms(), lease_ms=1_000) == [], "taken twice within its lease"
    clock.advance(1)
    assert outbox.take_due(clock.now_ms(), lease_ms=1_000) == []  # lost now; retried after 100 ms
    (lost,) = outbox.deliveries()
    assert lost.state == "pending" and [a.error for a in lost.attempts] == [LOST]
    clock.advance(100)
    (again,) = outbox.take_due(clock.now_ms(), lease_ms=1_000)
    assert again.id == taken.id
    assert outbox.report(again.id, clock.now_ms(), status_code=200) is again
    assert again.state == "delivered" and again.next_attempt_ms is None


def test_a_lost_attempt_counts_towards_the_maximum() -> None:
    clock, outbox = leased_outbox(max_attempts=1)
    outbox.take_due(clock.now_ms(), lease_ms=1_000)
    clock.advance(1_000)
    outbox.take_due(clock.now_ms(), lease_ms=1_000)
    (failed,) = outbox.deliveries()
    assert failed.state == "failed" and failed.tries == 1


def test_a_late_answer_after_the_lease_was_taken_back_is_ignored() -> None:
    clock, outbox = leased_outbox()
    (taken,) = outbox.take_due(clock.now_ms(), lease_ms=1_000)
    clock.advance(1_000)
    outbox.take_due(clock.now_ms(), lease_ms=1_000)
    assert outbox.report(taken.id, clock.now_ms(), status_code=200) is None
    assert outbox.deliveries()[0].state == "pending"


def test_without_a_lease_a_sending_delivery_waits_for_its_answer() -> None:
    clock, outbox = leased_outbox()
    (taken,) = outbox.take_due(clock.now_ms())
    clock.advance(60_000)
    assert outbox.take_due(clock.now_ms()) == []
    assert taken.state == "sending" and taken.next_attempt_ms is None


class CountingRecords(MemoryRecords[Delivery]):
    """Deliveries that count how many were read: `take_due` must not walk the settled ones."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> Delivery | None:
        self.reads += 1
        return super().get(key)

    def values(self) -> Iterator[Delivery]:
        found = list(super().values())
        self.reads += len(found)
        return iter(found)


def test_take_due_reads_only_the_open_deliveries() -> None:
    clock = ManualClock()
    records = CountingRecords()
    outbox = Outbox(Engine(clock), RetryPolicy(100, 2), records=records)
    outbox.subscribe(URL, SECRET)
    for n in range(50):
        outbox.publish("job.completed", f"job_{n}", {"id": f"job_{n}"}, clock.now_ms())
    taken = outbox.take_due(clock.now_ms(), lease_ms=1_000)
    assert len(taken) == 50
    for n, delivery in enumerate(taken):
        outbox.report(delivery.id, clock.now_ms(), status_code=200 if n % 10 else 500)
    assert set(outbox.open) == {d.id for d in taken[::10]}, "only the 5 retrying stay open"
    records.reads = 0
    clock.advance(100)
    retried = outbox.take_due(clock.now_ms(), lease_ms=1_000)
    assert {d.id for d in retried} == {d.id for d in taken[::10]}
    assert records.reads == 5, "take_due read a delivered delivery"
    for delivery in retried:
        outbox.report(delivery.id, clock.now_ms(), status_code=500)
    assert dict(outbox.open) == {}, "out of attempts: failed, and closed"
    assert [d.state for d in outbox.deliveries()].count("failed") == 5
    (failed, *_) = [d for d in outbox.deliveries() if d.state == "failed"]
    outbox.redeliver(failed.id, clock.now_ms())
    assert dict(outbox.open) == {failed.id: clock.now_ms()}
    outbox.clear()
    assert dict(outbox.open) == {} and outbox.deliveries() == []


def test_the_open_index_follows_a_lease_and_its_loss() -> None:
    clock, outbox = leased_outbox()
    (taken,) = outbox.take_due(clock.now_ms(), lease_ms=1_000)
    assert dict(outbox.open) == {taken.id: clock.now_ms() + 1_000}
    clock.advance(1_000)
    outbox.take_due(clock.now_ms(), lease_ms=1_000)  # lost: pending again, retried in 100 ms
    assert dict(outbox.open) == {taken.id: clock.now_ms() + 100}
    (again,) = outbox.take_due(clock.now_ms() + 100)  # without a lease: not open while sent
    assert again is taken and dict(outbox.open) == {}
    outbox.report(again.id, clock.now_ms() + 100, status_code=500)
    assert dict(outbox.open) == {taken.id: clock.now_ms() + 100 + 200}
