"""Webhook deliveries through the shared store: the open ones are indexed apart, in Redis too."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
from collections.abc import Iterator

import redis

from .test_fencing import ava_create
from .test_shared import PREFIX, eventually, two_workers

OPEN = PREFIX + "records:ava_outbox.open"
DELIVERIES = PREFIX + "records:ava_outbox.records"


@contextlib.contextmanager
def hook_receiver(*codes: int) -> Iterator[tuple[str, list[int]]]:
    """A webhook endpoint on 127.0.0.1 answering `codes` in turn, then 200; yields its URL and
    the codes it answered so far."""
    answered: list[int] = []
    script = list(codes)

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            code = script.pop(0) if script else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            answered.append(code)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", answered
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_retried_delivery_is_open_in_redis_until_it_is_delivered(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The dispatcher looks only at the open deliveries (model/outbox.py): in Redis they are a
    store of their own, which a delivery leaves once delivered, in every worker's world."""

    async def test() -> None:
        with hook_receiver(500) as (url, answered):
            async with two_workers(redis_url) as (first, second, a, b):
                added = await a.post("/_mock/ava/webhooks", json={"url": url, "secret": "s"})
                assert added.status_code == 201, added.text
                store, world = first.state.store, first.state.world
                create = ava_create("ten_acme", "wkr_acme_complete")
                job = await store.transact(lambda: create(world))
                forced = await b.post(
                    f"/_mock/ava/jobs/{job.id}/outcome", json={"outcome": "complete"}
                )
                assert forced.status_code == 200, forced.text
                # The clock is manual: the outbox's wake-up timer fires when it moves.
                assert (await a.post("/_mock/clock/advance", json={"ms": 1})).status_code == 200
                await eventually(
                    lambda: answered == [500] and redis_client.hlen(OPEN) == 1,
                    lambda: (
                        f"a first attempt answered 500, and the delivery open: {answered}, "
                        f"{redis_client.hgetall(OPEN)}"
                    ),
                )
                (delivery_id,) = redis_client.hkeys(OPEN)
                advanced = await a.post("/_mock/clock/advance", json={"ms": 100})
                assert advanced.status_code == 200, advanced.text
                await eventually(
                    lambda: answered == [500, 200] and redis_client.hlen(OPEN) == 0,
                    lambda: (
                        f"the retry delivered and the delivery closed: {answered}, "
                        f"{redis_client.hgetall(OPEN)}"
                    ),
                )
                assert redis_client.hexists(DELIVERIES, delivery_id), "a delivery is kept"
                for client in (a, b):
                    found = await client.get("/_mock/ava/webhooks/deliveries")
                    (shown,) = found.json()["deliveries"]
                    assert shown["state"] == "delivered" and len(shown["attempts"]) == 2
                for app in (first, second):
                    await app.state.store.catch_up()
                    assert dict(app.state.world.ava_outbox.open) == {}

    asyncio.run(asyncio.wait_for(test(), 30))
