"""Event streams against a real server (`python -m mock_server` on 127.0.0.1).

ASGI transports buffer whole responses, so only a socket shows what a client sees while a job runs.
Nothing here sleeps for pacing: a stream read blocks until the server sends the next entry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.clients.sse import SseComment, SseEvent, parse
from conformance.server import ReferenceServer
from mock_server.model.stream_id import StreamId
from mock_server.profile import FIXTURES

ACME = "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01"
MAIN = "auvy_test_acme_rw"
OTHER = "auvy_test_globex_rw"
COMPLETE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
APPROVAL = "2d9a3b5c-4e6f-4a7b-8c1d-3e4f5a6b7c12"
LONG = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"
OTHER_PATHWAY = "7c4f8a0b-9d1e-4f2a-9b6c-8d9e0f1a2b17"

PING_MS = 200
# A stream that should have ended but did not fails on the read timeout instead of hanging.
TIMEOUT = httpx.Timeout(10.0, read=5.0)


def write_profile(directory: Path, *, stream_maxlen: int) -> Path:
    seed = (FIXTURES / "seed" / "auvy.toml").as_posix()
    path = directory / f"server-{stream_maxlen}.toml"
    path.write_text(
        "[server]\n"
        'clock = "system"\n'
        f"ping_interval_ms = {PING_MS}\n"
        "\n[auvy]\n"
        f'seed = "{seed}"\n'
        "step_ms = 10\n"
        "start_delay_ms = 5\n"
        f"stream_maxlen = {stream_maxlen}\n",
        encoding="utf-8",
    )
    return path


@dataclass
class Server:
    url: str

    def client(self, key: str = MAIN) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/auvy",
            headers={"Authorization": f"Bearer {key}"},
            timeout=TIMEOUT,
        )


def serve(profile: Path) -> Iterator[Server]:
    server = ReferenceServer(profile)
    try:
        server.start()
        yield Server(server.url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(write_profile(tmp_path_factory.mktemp("sse"), stream_maxlen=10_000))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server keeping only the last 5 entries of each stream."""
    yield from serve(write_profile(tmp_path_factory.mktemp("sse-small"), stream_maxlen=5))


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@dataclass
class Read:
    """What one stream response delivered: headers, raw lines, parsed items, whether it ended."""

    headers: httpx.Headers
    lines: list[str] = field(default_factory=list)
    items: list[SseEvent | SseComment] = field(default_factory=list)
    ended: bool = False

    @property
    def events(self) -> list[SseEvent]:
        return [i for i in self.items if isinstance(i, SseEvent)]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events if e.id is not None]

    def data(self) -> list[dict[str, Any]]:
        return [e.json() for e in self.events]


def start(api: httpx.Client, pathway: str) -> str:
    response = api.post("/v1/jobs", json={"pathway_id": pathway})
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def stream(
    api: httpx.Client,
    job_id: str,
    *,
    after: str | None = None,
    events: int | None = None,
    until_type: str | None = None,
    until_status: str | None = None,
    until_ping: bool = False,
) -> Read:
    """Read a job's stream until it ends, or until a stop condition, then disconnect."""
    params = {"after": after} if after is not None else None
    with api.stream("GET", f"/v1/jobs/{job_id}/stream", params=params) as response:
        assert response.status_code == 200, response.read()
        read = Read(response.headers)

        def lines() -> Iterator[str]:
            for line in response.iter_lines():
                read.lines.append(line)
                yield line

        for item in parse(lines()):
            read.items.append(item)
            if isinstance(item, SseComment):
                if until_ping:
                    return read
                continue
            data = item.json()
            if events is not None and len(read.events) >= events:
                return read
            if until_type is not None and data["type"] == until_type:
                return read
            if until_status is not None and data.get("status") == until_status:
                return read
        read.ended = True
        return read


def assert_ids_strictly_increase(ids: list[str]) -> None:
    parsed = [StreamId.parse(i) for i in ids]
    assert all(a < b for a, b in pairwise(parsed)), ids


# --- a whole run -------------------------------------------------------------------------------


def test_a_completing_job_streams_every_entry_then_the_server_closes(api: httpx.Client) -> None:
    job_id = start(api, COMPLETE)
    live = stream(api, job_id)
    assert live.ended, "the response must end after the terminal entry"
    assert live.headers["content-type"].startswith("text/event-stream")
    assert live.headers["cache-control"] == "no-cache"
    assert live.headers["x-accel-buffering"] == "no"
    assert "x-stream-truncated" not in live.headers

    events = live.events
    assert all(e.id is not None for e in events)
    assert all(e.event is None for e in events)
    assert not any(line.startswith("event:") for line in live.lines)
    assert_ids_strictly_increase(live.ids)
    # Every entry is exactly: id line, data line, blank line (pings may sit between entries).
    entry_lines = [line for line in live.lines if not line.startswith(":")]
    for i in range(0, len(entry_lines), 3):
        block = entry_lines[i : i + 3]
        assert block[0].startswith("id: ")
        assert block[1].startswith("data: ")
        assert block[2] == ""
    data = live.data()
    assert data[0]["type"] == "state_update"
    assert [d["type"] for d in data].count("complete") == 1
    assert data[-1] == {"type": "complete", "result": {"summary": "Revenue grew 12%.", "steps": 5}}
    tokens = "".join(d["content"] for d in data if d["type"] == "token")
    assert tokens == "Fetching sources. Revenue grew 12%."

    replay = stream(api, job_id)
    assert replay.ended
    assert replay.ids == live.ids
    assert replay.data() == data
    assert api.get(f"/v1/jobs/{job_id}/status").json()["status"] == "completed"


def test_a_waiting_job_gets_keepalive_pings(api: httpx.Client) -> None:
    job_id = start(api, APPROVAL)
    began = time.monotonic()
    read = stream(api, job_id, until_ping=True)
    elapsed = time.monotonic() - began
    assert isinstance(read.items[-1], SseComment)
    assert read.items[-1].text == "ping"
    assert ": ping" in read.lines
    last = read.data()[-1]
    assert (last["type"], last["status"]) == ("state_update", "waiting")
    assert last["waitingFor"]["type"] == "approval"
    assert elapsed < 5, f"no ping within {elapsed:.1f}s (interval {PING_MS} ms)"

    assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    after_cancel = stream(api, job_id)
    assert after_cancel.ended
    assert after_cancel.data()[-1] == {
        "type": "error",
        "code": "CANCELLED",
        "message": "Job cancelled",
    }


def test_after_is_exclusive(api: httpx.Client) -> None:
    job_id = start(api, COMPLETE)
    full = stream(api, job_id)
    ids = full.ids
    assert len(ids) > 4
    for k in (0, 3, len(ids) - 2):
        rest = stream(api, job_id, after=ids[k])
        assert rest.ended
        assert rest.ids == ids[k + 1 :]
        assert rest.data() == full.data()[k + 1 :]
    # After the terminal entry of a finished job there is nothing left: the response just ends.
    done = stream(api, job_id, after=ids[-1])
    assert done.ended
    assert done.events == []
    # An id older than everything, with nothing trimmed, replays everything without a marker.
    everything = stream(api, job_id, after="0-0")
    assert everything.ids == ids
    assert "x-stream-truncated" not in everything.headers


def test_disconnect_then_resume_with_the_last_id_gives_exactly_the_rest(
    api: httpx.Client,
) -> None:
    job_id = start(api, APPROVAL)
    first = stream(api, job_id, events=2)
    assert not first.ended
    assert len(first.ids) == 2

    # Resume where the first connection stopped; the job waits, so approve it mid-stream.
    with api.stream(
        "GET", f"/v1/jobs/{job_id}/stream", params={"after": first.ids[-1]}
    ) as response:
        assert response.status_code == 200
        rest: list[SseEvent] = []
        approved = False
        for item in parse(response.iter_lines()):
            if isinstance(item, SseComment):
                continue
            rest.append(item)
            data = item.json()
            if data.get("status") == "waiting" and not approved:
                body = {
                    "workspace_id": ACME,
                    "input": {
                        "type": "intervention_response",
                        "interventionId": data["waitingFor"]["interventionId"],
                        "action": "approve",
                    },
                }
                answer = api.post(f"/v1/jobs/{job_id}/input", json=body)
                assert answer.status_code == 200, answer.text
                approved = True
    assert approved
    assert rest[-1].json()["type"] == "complete"

    full = stream(api, job_id)
    assert first.ids + [e.id for e in rest] == full.ids
    assert first.data() + [e.json() for e in rest] == full.data()
    assert_ids_strictly_increase(full.ids)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("after", ["bogus", "12", "1-2-3", f"{2**64}-0"])
def test_an_invalid_after_is_a_400_envelope(api: httpx.Client, after: str) -> None:
    job_id = start(api, COMPLETE)
    response = api.get(f"/v1/jobs/{job_id}/stream", params={"after": after})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["field"] == "after"


def test_streams_of_foreign_or_unknown_jobs_are_404(server: Server, api: httpx.Client) -> None:
    with server.client(OTHER) as other:
        foreign = start(other, OTHER_PATHWAY)
    for job_id in (foreign, "no-such-job"):
        response = api.get(f"/v1/jobs/{job_id}/stream")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == "RESOURCE_NOT_FOUND"


def test_a_stream_needs_a_key(server: Server) -> None:
    with server.client() as api:
        job_id = start(api, COMPLETE)
    with httpx.Client(base_url=f"{server.url}/auvy", timeout=TIMEOUT) as anonymous:
        response = anonymous.get(f"/v1/jobs/{job_id}/stream")
    assert response.status_code == 401
    assert response.json()["code"] == "AUTH_REQUIRED"


# --- retention ---------------------------------------------------------------------------------


def test_resuming_before_the_retained_window_sends_a_truncation_marker(small: Server) -> None:
    with small.client() as api:
        job_id = start(api, COMPLETE)
        assert stream(api, job_id).ended  # wait for the job to finish

        retained = stream(api, job_id)
        assert len(retained.events) == 5
        assert "x-stream-truncated" not in retained.headers
        assert retained.data()[-1]["type"] == "complete"

        gap = stream(api, job_id, after="1-0")
        assert gap.ended
        assert gap.headers["x-stream-truncated"] == "true"
        marker = gap.events[0]
        assert marker.id is None
        assert marker.json() == {
            "type": "truncated",
            "requested_after": "1-0",
            "first_retained": retained.ids[0],
        }
        assert not any(line.startswith("id:") for line in gap.lines[: gap.lines.index("")])
        assert gap.ids == retained.ids
        assert gap.data()[1:] == retained.data()

        within = stream(api, job_id, after=retained.ids[0])
        assert "x-stream-truncated" not in within.headers
        assert within.ids == retained.ids[1:]
        assert all(e.id is not None for e in within.events)


def test_a_live_reader_of_a_long_job_sees_increasing_ids(small: Server) -> None:
    with small.client() as api:
        job_id = start(api, LONG)
        read = stream(api, job_id, events=30)
        assert len(read.ids) == 30
        assert_ids_strictly_increase(read.ids)
        progress = [d["progress"] for d in read.data() if d["type"] == "state_update"]
        assert progress == sorted(progress)
        assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        tail = stream(api, job_id, after=read.ids[-1])
        assert tail.ended
        assert tail.data()[-1]["code"] == "CANCELLED"
