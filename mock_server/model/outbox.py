"""Webhook deliveries as state: endpoints, signed events, attempts and their backoff.

The model only records what must be sent and what happened; it never does I/O. The async layer
(`mock_server.webhooks`) takes due deliveries with `take_due`, POSTs them and reports each result
with `report`. A failed attempt is retried on the engine's clock with exponential backoff; a
delivery that runs out of attempts stays in the store as `failed` (and can be re-queued), so no
event is ever dropped. Because nothing is dropped, `take_due` looks only at the open deliveries
(`Outbox.open`: pending, or sending under a lease), not at every delivery ever made.

    pending --take_due--> sending --report 2xx--> delivered
       ^                     |
       +------- retry -------+--attempts exhausted--> failed --redeliver--> pending
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..clock import iso
from .engine import Engine
from .errors import IllegalTransition, NotFound
from .scheduler import Call
from .store import MemoryRecords, RecordStore

# The engine key the dispatcher listens on: new work, or a retry that became due.
OUTBOX_KEY = "outbox"
LOST = "no answer: the worker sending it stopped before its lease ran out"
SIGNATURE_HEADER = "X-HLD-Signature-256"

DeliveryState = Literal["pending", "sending", "delivered", "failed"]


def sign(secret: str, body: bytes) -> str:
    """The X-HLD-Signature-256 value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str


@dataclass(frozen=True)
class RetryPolicy:
    base_ms: int = 1_000
    max_attempts: int = 6

    def delay_ms(self, failed_attempts: int) -> int:
        """Wait before the next attempt after `failed_attempts` failures: base, 2x, 4x, ..."""
        return int(self.base_ms * 2 ** max(0, failed_attempts - 1))


@dataclass(frozen=True)
class Attempt:
    at_ms: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Delivery:
    id: str
    event_id: str
    event_type: str
    subject: str  # what the event is about (a job id), for filtering
    endpoint: Endpoint
    body: bytes
    created_ms: int
    state: DeliveryState = "pending"
    next_attempt_ms: int | None = None
    tries: int = 0  # attempts in the current round (a redelivery starts a new round)
    attempts: list[Attempt] = field(default_factory=list)
    delivered_ms: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "mock_server-webhooks/1",
            SIGNATURE_HEADER: sign(self.endpoint.secret, self.body),
            "X-HLD-Event": self.event_type,
            "X-HLD-Delivery": self.id,
        }


class Outbox:
    def __init__(
        self,
        engine: Engine,
        policy: RetryPolicy | None = None,
        *,
        records: RecordStore[Delivery] | None = None,
    ) -> None:
        self.engine = engine
        self.policy = policy or RetryPolicy()
        self.records: RecordStore[Delivery] = records if records is not None else MemoryRecords()
        # Delivery id -> when `take_due` must look at it again (a pending one's next attempt, a
        # leased one's lease end): every delivery `take_due` may take, and no other.
        self.open: MutableMapping[str, int] = {}
        self.endpoints: list[Endpoint] = []

    # -- endpoints -----------------------------------------------------------------------------

    def subscribe(self, url: str, secret: str) -> Endpoint:
        """Add an endpoint; the same URL again replaces its secret rather than doubling events."""
        endpoint = Endpoint(url, secret)
        self.endpoints = [e for e in self.endpoints if e.url != url] + [endpoint]
        return endpoint

    def clear_endpoints(self) -> None:
        self.endpoints.clear()

    # -- events --------------------------------------------------------------------------------

    def publish(
        self,
        event_type: str,
        subject: str,
        data: Mapping[str, Any],
        now: int,
        *,
        shape: str = "envelope",
    ) -> list[Delivery]:
        """One delivery per endpoint, all carrying the same bytes (so the same event id).

        `shape` "envelope" sends `{id, type, created_at, data}`; "job" sends
        `{id, event, created_at, job}`: the document promises only that the payload includes the
        full record, so where it sits and what names the event are a sender's choice."""
        if not self.endpoints:
            return []
        event_id = f"evt_{secrets.token_hex(12)}"
        event: dict[str, Any]
        if shape == "job":
            event = {"id": event_id, "event": event_type, "created_at": iso(now), "job": dict(data)}
        else:
            event = {"id": event_id, "type": event_type, "created_at": iso(now), "data": dict(data)}
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        made = []
        for endpoint in self.endpoints:
            delivery = Delivery(
                id=f"dlv_{secrets.token_hex(12)}",
                event_id=event_id,
                event_type=event_type,
                subject=subject,
                endpoint=endpoint,
                body=body,
                created_ms=now,
                next_attempt_ms=now,
            )
            self._save(delivery)
            made.append(delivery)
        self._wake_at(now)
        return made

    def take_due(self, now: int, lease_ms: int | None = None) -> list[Delivery]:
        """Pending deliveries whose time has come, marked `sending` so nobody takes them twice.

        With several workers sending (a shared store), each taken delivery carries a lease: one
        still `sending` when its lease ran out was lost with the worker that took it, so that
        attempt counts as failed (no answer) and the retry policy goes on from there."""
        looked_at = [
            d
            for key, when in list(self.open.items())
            if when <= now and (d := self.records.get(key)) is not None
        ]
        for lost in [d for d in looked_at if d.state == "sending"]:
            self.report(lost.id, now, status_code=None, error=LOST)
        due = [d for d in looked_at if d.state == "pending" and (d.next_attempt_ms or 0) <= now]
        due.sort(key=lambda d: (d.next_attempt_ms or 0, d.created_ms))
        for delivery in due:
            delivery.state = "sending"
            delivery.next_attempt_ms = None if lease_ms is None else now + lease_ms
            self._save(delivery)
        if due and lease_ms is not None:
            self._wake_at(now + lease_ms)
        return due

    def report(
        self, delivery_id: str, now: int, *, status_code: int | None, error: str | None = None
    ) -> Delivery | None:
        """Record one attempt's result; schedule the retry, or settle the delivery."""
        delivery = self.records.get(delivery_id)
        if delivery is None or delivery.state != "sending":
            return None  # cleared by a reset while the request was in flight
        attempt = Attempt(now, status_code, error)
        delivery.next_attempt_ms = None  # the lease, if any, ends with the answer
        delivery.attempts.append(attempt)
        delivery.tries += 1
        if attempt.ok:
            delivery.state = "delivered"
            delivery.delivered_ms = now
        elif delivery.tries >= self.policy.max_attempts:
            delivery.state = "failed"
        else:
            delivery.state = "pending"
            delivery.next_attempt_ms = now + self.policy.delay_ms(delivery.tries)
            self._wake_at(delivery.next_attempt_ms)
        self._save(delivery)
        return delivery

    def redeliver(self, delivery_id: str, now: int) -> Delivery:
        """Give a failed delivery a fresh round of attempts, starting now."""
        delivery = self.records.get(delivery_id)
        if delivery is None:
            raise NotFound("delivery", delivery_id)
        if delivery.state != "failed":
            raise IllegalTransition("delivery", delivery_id, delivery.state, "redeliver")
        delivery.state = "pending"
        delivery.tries = 0
        delivery.next_attempt_ms = now
        self._save(delivery)
        self._wake_at(now)
        return delivery

    def deliveries(self, subject: str | None = None) -> list[Delivery]:
        found = [d for d in self.records.values() if subject is None or d.subject == subject]
        found.sort(key=lambda d: (d.created_ms, d.id))
        return found

    def clear(self) -> None:
        self.records.clear()
        self.open.clear()

    def _save(self, delivery: Delivery) -> None:
        """Save `delivery`, and file it among the open ones or take it out of them."""
        self.records.save(delivery.id, delivery)
        when = delivery.next_attempt_ms
        if delivery.state in ("pending", "sending") and when is not None:
            if self.open.get(delivery.id) != when:
                self.open[delivery.id] = when
        elif delivery.id in self.open:
            del self.open[delivery.id]

    def _wake_at(self, due_ms: int) -> None:
        # A timer rather than a direct notify: a retry must wait for the engine's clock.
        self.engine.scheduler.at(due_ms, Call(self, "_wake"))

    def _wake(self, _now: int) -> None:
        self.engine.notify(OUTBOX_KEY)


def render_delivery(delivery: Delivery) -> dict[str, Any]:
    """For the control route: everything but the secret."""
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "type": delivery.event_type,
        "subject": delivery.subject,
        "url": delivery.endpoint.url,
        "state": delivery.state,
        "created_at": iso(delivery.created_ms),
        "next_attempt_at": iso(delivery.next_attempt_ms),
        "delivered_at": iso(delivery.delivered_ms),
        "attempts": [
            {"at": iso(a.at_ms), "status_code": a.status_code, "error": a.error}
            for a in delivery.attempts
        ],
        "body": delivery.body.decode(),
    }
