"""`MockServer`'s direct way to the API apps answers exactly as Starlette's full stack.

Every request is sent twice to the same app, once with the direct table in place and once with it
emptied (so the request takes error middleware, CORS, the router and its Mounts), and the ASGI
messages sent back must be the same, byte for byte once random ids are masked.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from mock_server.app import MockServer, create_app
from mock_server.clock import ManualClock
from mock_server.profile import ServerProfile
from mock_server.world import World

PROFILE = {"server": {"clock": "manual"}, "auvy": {"step_ms": 10, "start_delay_ms": 5}}
AUVY = [(b"authorization", b"Bearer auvy_test_acme_rw")]
STRAIT = [
    (
        b"authorization",
        b"Bearer strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1",
    )
]
JSON = [(b"content-type", b"application/json")]
ORIGIN = [(b"origin", b"http://localhost:5173")]
COMPLETE = b"0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REQUEST_ID = re.compile(rb'"request_id":"[^"]*"')


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]], query: bytes) -> Any:
    """The scope uvicorn builds (its path is percent-decoded: %0A arrives as a newline)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:8080"), *headers],
        "state": {},
    }


def exchange(
    app: MockServer,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    *,
    direct: bool,
    query: bytes = b"",
) -> list[Message]:
    """The messages the app sends; an exception it raises is raised after them, as `.sent`."""
    saved = app.direct, app.direct_root
    if not direct:
        app.direct, app.direct_root = {}, None
    sent: list[Message] = []
    request: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return request.pop() if request else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope(method, path, headers or [], query), receive, send))
    except Exception as exc:
        exc.add_note(repr(sent))
        raise
    finally:
        app.direct, app.direct_root = saved
    return sent


def masked(messages: list[Message]) -> list[Message]:
    """Random ids (job ids, error request ids) replaced, so two answers can be compared."""
    out: list[Message] = []
    for message in messages:
        copy = dict(message)
        if "body" in copy:
            copy["body"] = REQUEST_ID.sub(b'"request_id":"-"', UUID.sub(b"<uuid>", copy["body"]))
        out.append(copy)
    return out


def same_answer(app: MockServer, *args: Any, **kwargs: Any) -> list[Message]:
    direct = masked(exchange(app, *args, direct=True, **kwargs))
    assert direct == masked(exchange(app, *args, direct=False, **kwargs))
    return direct


@pytest.fixture(scope="module")
def app() -> MockServer:
    return create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock())


@pytest.fixture
def world(app: MockServer) -> World:
    world: World = app.state.world
    world.reset()
    return world


@pytest.fixture
def ids(app: MockServer, world: World) -> tuple[str, str]:
    """A job and a run to read."""
    body = b'{"pathway_id":"' + COMPLETE + b'"}'
    created = exchange(app, "POST", "/auvy/v1/jobs", AUVY + JSON, body, direct=True)
    triggered = exchange(
        app,
        "POST",
        "/strait/v1/jobs/job_acme_complete/trigger",
        STRAIT + JSON,
        b'{"payload":{}}',
        direct=True,
    )
    assert (created[0]["status"], triggered[0]["status"]) == (200, 201)
    return json.loads(created[1]["body"])["job_id"], json.loads(triggered[1]["body"])["id"]


def test_the_api_prefixes_are_direct_and_everything_else_is_not(
    app: MockServer, ids: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sorted(app.direct) == ["auvy", "ava", "strait"]
    assert app.direct_root is None

    async def stack(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"{scope['path']} took the full stack")

    monkeypatch.setattr(app, "middleware_stack", stack)
    path = f"/auvy/v1/jobs/{ids[0]}/status"
    assert exchange(app, "GET", path, AUVY, direct=True)[0]["status"] == 200
    for headers in ([], ORIGIN):
        with pytest.raises(AssertionError, match="took the full stack"):
            exchange(app, "GET", "/_mock/health" if not headers else path, headers, direct=True)


@pytest.mark.parametrize(
    ("method", "path", "headers", "query"),
    [
        ("GET", "/auvy/v1/jobs/{job}/status", AUVY, b""),
        ("HEAD", "/auvy/v1/jobs/{job}/status", AUVY, b""),
        ("GET", "/auvy/v1/jobs/{job}/status", [], b""),
        ("GET", "/auvy/v1/jobs/{job}/status", AUVY + ORIGIN, b""),
        ("GET", "/auvy/v1/jobs/a\nb/status", AUVY, b""),
        ("GET", "/auvy/v1/jobs/00000000-0000-4000-8000-000000000000/status", AUVY, b""),
        ("PUT", "/auvy/v1/jobs/{job}/status", AUVY, b""),
        ("GET", "/auvy/v1/jobs", AUVY, b"status=bogus"),
        ("GET", "/auvy/v1/jobs", AUVY, b"limit=2&offset=0"),
        ("GET", "/auvy/v1/jobs/{job}/stream", AUVY, b"after=nope"),
        ("OPTIONS", "/auvy/v1/jobs", AUVY, b""),
        ("GET", "/auvy/", AUVY, b""),
        ("GET", "/auvy", AUVY, b""),
        ("GET", "/auvyx/v1/jobs", AUVY, b""),
        ("GET", "/nowhere", [], b""),
        ("GET", "/_mock/health", [], b""),
        ("GET", "/strait/v1/runs/{run}", STRAIT, b""),
        ("GET", "/strait/v1/runs/run_nope", STRAIT, b""),
        ("DELETE", "/strait/v1/runs/dlq", STRAIT, b""),
        ("GET", "/ava/v1/ava/jobs", [], b""),
    ],
)
def test_reads_and_refusals(
    app: MockServer,
    ids: tuple[str, str],
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    query: bytes,
) -> None:
    job, run = ids
    answer = same_answer(app, method, path.format(job=job, run=run), headers, query=query)
    assert answer[0]["type"] == "http.response.start"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (AUVY + JSON, b'{"pathway_id":"' + COMPLETE + b'"}', 200),
        (AUVY + JSON, b'{"pathway_id":"' + COMPLETE + b'", "pathway": {"a": 1}}', 400),
        (AUVY + JSON, b"{not json", 400),
        (AUVY, b'{"pathway_id":"' + COMPLETE + b'"}', 400),
        (JSON, b'{"pathway_id":"' + COMPLETE + b'"}', 401),
        (AUVY + JSON + ORIGIN, b'{"pathway_id":"' + COMPLETE + b'"}', 200),
    ],
)
def test_creating_a_job(
    app: MockServer, world: World, headers: list[tuple[bytes, bytes]], body: bytes, status: int
) -> None:
    answer = same_answer(app, "POST", "/auvy/v1/jobs", headers, body)
    assert answer[0]["status"] == status


def test_a_preflight(app: MockServer) -> None:
    headers = [*ORIGIN, (b"access-control-request-method", b"POST")]
    assert same_answer(app, "OPTIONS", "/auvy/v1/jobs", headers)[0]["status"] == 200


def test_an_error_inside_the_handler_is_the_500_envelope(
    app: MockServer, world: World, ids: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.auvy, "get_job", explode)
    path = f"/auvy/v1/jobs/{ids[0]}/status"
    assert same_answer(app, "GET", path, AUVY)[0]["status"] == 500


def test_an_error_escaping_the_api_app_is_starlettes_plain_500_and_is_raised(
    app: MockServer, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.auvy_app, "respond", explode)
    answers = []
    for direct in (True, False):
        with pytest.raises(RuntimeError, match="boom") as raised:
            exchange(app, "GET", "/auvy/v1/jobs", AUVY, direct=direct)
        answers.append(raised.value.__notes__)
    assert answers[0] == answers[1]
    assert "'status': 500" in answers[0][0]
    assert "b'Internal Server Error'" in answers[0][0]


def test_a_single_api_at_the_root_is_direct_but_for_the_control_routes() -> None:
    app = create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock(), root_api="auvy")
    assert app.direct_root is not None
    assert app.direct == {}
    for method, path in [
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/a\nb/status"),
        ("GET", "/auvy/v1/jobs"),
        ("GET", "/_mock"),
        ("GET", "/_mock/health"),
        ("GET", "/"),
    ]:
        same_answer(app, method, path, AUVY)


def test_with_a_fault_every_request_takes_the_full_stack() -> None:
    app = create_app(
        ServerProfile.from_dict(PROFILE), clock=ManualClock(), faults=["cancel-terminal-ok"]
    )
    assert app.direct == {}
    assert app.direct_root is None
