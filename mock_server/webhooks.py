"""Sends the outbox's webhook deliveries over HTTP and reports each result back to it.

The outbox (`mock_server.model.outbox`) decides what is due and when to retry; this module only
does the I/O. `Dispatcher.run` is started from the app's lifespan next to the clock driver: it
sleeps until the outbox is told of new work (an event, or a retry timer firing on the engine's
clock) and sends each due delivery in its own task, so one slow endpoint does not hold up
another. `Sender` is the seam: `HttpxSender` in the server, a fake in unit tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from .model.engine import Engine
from .model.outbox import OUTBOX_KEY, Delivery, Outbox

log = logging.getLogger("mock_server.webhooks")
RETRY_S = 1.0  # after a dispatch section failed
T = TypeVar("T")

# Runs a change to the outbox so that it is written once: a shared store (mock_server.store)
# runs it again until its commit lands (`SharedWorld.transact`).
Transact = Callable[[Callable[[], Any]], Awaitable[Any]]


async def run_here(work: Callable[[], T]) -> T:
    return work()


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST the body; the response's status code, or raise when no response came."""
        ...


class HttpxSender:
    def __init__(self, timeout_s: float) -> None:
        # No redirects: a signed body must reach the configured URL or count as a failure.
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        response = await self._client.post(url, content=body, headers=dict(headers))
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


class Dispatcher:
    """`transact` runs every change to the outbox: with a shared store (mock_server.store) a
    delivery is taken only by the one worker whose commit landed, so it is sent by exactly one;
    its `lease_ms` (longer than a send may take) lets another worker retry a delivery whose
    sender died mid-request."""

    def __init__(
        self,
        engine: Engine,
        outbox: Outbox,
        sender: Sender,
        *,
        transact: Transact = run_here,
        lease_ms: int | None = None,
    ) -> None:
        self.engine = engine
        self.lease_ms = lease_ms
        self.outbox = outbox
        self.sender = sender
        self.transact = transact
        self._tasks: set[asyncio.Task[None]] = set()

    async def pump(self) -> int:
        """Send every due delivery and wait for all of them; returns how many were sent."""
        due = await self.transact(self._take_due)
        await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def run(self) -> None:
        changed = asyncio.Event()
        unsubscribe = self.engine.subscribe(OUTBOX_KEY, changed.set)
        try:
            while True:
                changed.clear()
                try:
                    due = await self.transact(self._take_due)
                except Exception:
                    # A shared store that cannot load the world (data it refuses) fails this
                    # section, not webhook delivery for good: try again in a while.
                    log.exception("webhook dispatch failed; retrying in %s s", RETRY_S)
                    await asyncio.sleep(RETRY_S)
                    continue
                for delivery in due:
                    task = asyncio.create_task(self._deliver(delivery))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                await changed.wait()
        finally:
            unsubscribe()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _deliver(self, delivery: Delivery) -> None:
        status: int | None = None
        error: str | None = None
        try:
            status = await self.sender.post(delivery.endpoint.url, delivery.body, delivery.headers)
            if not 200 <= status < 300:
                error = f"the endpoint answered HTTP {status}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Any failure to get an answer (refused, timeout, bad URL) is one failed attempt.
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is not None:
            log.info("webhook %s to %s failed: %s", delivery.id, delivery.endpoint.url, error)
        await self.transact(
            lambda: self.outbox.report(
                delivery.id, self.engine.now(), status_code=status, error=error
            )
        )

    def _take_due(self) -> list[Delivery]:
        return self.outbox.take_due(self.engine.now(), self.lease_ms)
