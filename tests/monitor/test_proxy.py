"""The proxy on real sockets: it forwards requests unchanged, streams event streams event by
event (the upstream holds its second event until the client has seen the first through the
proxy), stops reading the upstream when the client goes away, and serves /_monitor/ itself."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from conformance.profile import REFERENCE_PROFILE, TargetProfile
from conformance.requirements import load_catalog
from monitor.proxy import Monitor

DEADLINE_S = 10.0


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` on a free 127.0.0.1 port in a thread; always stopped."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
    server.config.timeout_graceful_shutdown = 1
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE_S
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE_S)
        sock.close()


class Upstream:
    """Echoes requests at /echo; /stream sends one event, waits for `release`, sends another;
    /forever sends an event every 20 ms until its client (the proxy) goes away: `gone`."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.gone = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/echo":
            echo = {
                "method": scope["method"],
                "raw_path": scope["raw_path"].decode(),
                "query": scope["query_string"].decode(),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                "body": body.decode(),
            }
            payload = json.dumps(echo).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 207,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"x-custom", b"kept"),
                        (b"set-cookie", b"a=1"),
                        (b"set-cookie", b"b=2"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        if scope["path"] == "/stream":
            await send(
                {"type": "http.response.body", "body": b"id: 1-0\ndata: {}\n\n", "more_body": True}
            )
            deadline = time.monotonic() + DEADLINE_S
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"id: 2-0\ndata: {}\n\n"})
            return

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            for n in range(int(DEADLINE_S / 0.02)):
                if self.gone.is_set():
                    break
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"data: {n}\n\n".encode(),
                        "more_body": True,
                    }
                )
                await asyncio.sleep(0.02)
        finally:
            watcher.cancel()


def monitor_for(upstream: str) -> Monitor:
    profile = TargetProfile.load(REFERENCE_PROFILE).data
    return Monitor(upstream, profile=profile, apis=["auvy"], catalog=load_catalog())


def test_requests_and_responses_pass_unchanged() -> None:
    with serving(Upstream()) as upstream, serving(monitor_for(upstream)) as proxy:
        response = httpx.post(
            f"{proxy}/echo?b=2&a=%20x&a=1",
            content=b'{"x": [1, 2]}',
            headers={"X-Thing": "1", "Authorization": "Bearer k", "Connection": "keep-alive"},
            timeout=DEADLINE_S,
        )
    assert response.status_code == 207
    assert response.headers["x-custom"] == "kept"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    echo = response.json()
    assert (echo["method"], echo["raw_path"], echo["query"], echo["body"]) == (
        "POST",
        "/echo",
        "b=2&a=%20x&a=1",
        '{"x": [1, 2]}',
    )
    sent = {k: v for k, v in echo["headers"]}
    assert sent["x-thing"] == "1" and sent["authorization"] == "Bearer k"
    assert "connection" not in sent  # hop-by-hop
    assert sent["host"] == upstream.removeprefix("http://")


def test_an_event_stream_is_forwarded_event_by_event() -> None:
    upstream_app = Upstream()
    with (
        serving(upstream_app) as upstream,
        serving(monitor_for(upstream)) as proxy,
        httpx.Client(timeout=DEADLINE_S) as client,
        client.stream("GET", f"{proxy}/stream") as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "id: 1-0"  # arrives while the upstream holds the second event
        upstream_app.release.set()
        rest = list(lines)
    assert "id: 2-0" in rest


def test_the_upstream_read_stops_when_the_client_goes_away() -> None:
    upstream_app = Upstream()
    with serving(upstream_app) as upstream, serving(monitor_for(upstream)) as proxy:
        with (
            httpx.Client(timeout=DEADLINE_S) as client,
            client.stream("GET", f"{proxy}/forever") as response,
        ):
            assert next(response.iter_lines()) == "data: 0"
        assert upstream_app.gone.wait(DEADLINE_S), "the proxy kept reading the upstream"


def test_the_monitor_pages_are_its_own_and_a_dead_upstream_is_a_502() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}"
    with serving(monitor_for(dead)) as proxy:
        status = httpx.get(f"{proxy}/_monitor/status", timeout=DEADLINE_S).json()
        page = httpx.get(f"{proxy}/_monitor/", timeout=DEADLINE_S)
        down = httpx.get(f"{proxy}/auvy/v1/jobs", timeout=DEADLINE_S)
    assert status["mode"] == "monitor"
    assert {r["id"] for r in status["requirements"]} >= {"auvy.stream.ids"}
    assert page.status_code == 200 and "Conformance monitor" in page.text
    assert down.status_code == 502


class FlippingStatus:
    """An AUVY status route that says completed once, then running: a final status undone (the
    body is not the documented one either, which the schema check reports too)."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.requests += 1
        status = "completed" if self.requests == 1 else "running"
        body = json.dumps({"job_id": "j1", "status": status}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def flip_through(probe: bool) -> tuple[FlippingStatus, dict[str, Any]]:
    upstream_app = FlippingStatus()
    profile = TargetProfile.load(REFERENCE_PROFILE).data
    key = profile["auvy"]["keys"]["main"]
    with serving(upstream_app) as upstream:
        monitor = Monitor(
            upstream, profile=profile, apis=["auvy"], catalog=load_catalog(), probe=probe
        )
        with serving(monitor) as proxy:
            for _ in range(2):
                httpx.get(
                    f"{proxy}/auvy/v1/jobs/j1/status",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=DEADLINE_S,
                )
            deadline = time.monotonic() + DEADLINE_S
            while True:
                status = httpx.get(f"{proxy}/_monitor/status", timeout=DEADLINE_S).json()
                noted = any("--probe" in v["message"] for v in status["recent_violations"])
                if not probe or noted or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
    return upstream_app, status


def test_without_probe_the_monitor_sends_nothing_of_its_own() -> None:
    upstream_app, status = flip_through(probe=False)
    final = [v for v in status["recent_violations"] if v["requirement"].endswith("-final")]
    assert [v["requirement"] for v in final] == ["auvy.jobs.status.completed-final"]
    assert "--probe" not in final[0]["message"]
    assert upstream_app.requests == 2 and status["probes_sent"] == 0


def test_probe_rereads_the_status_once_and_notes_the_answer() -> None:
    upstream_app, status = flip_through(probe=True)
    (violation,) = [v for v in status["recent_violations"] if v["requirement"].endswith("-final")]
    assert (
        "[--probe: GET /auvy/v1/jobs/j1/status then answered 200, status 'running']"
        in (violation["message"])
    )
    assert upstream_app.requests == 3 and status["probes_sent"] == 1
