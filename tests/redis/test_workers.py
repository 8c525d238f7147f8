"""Two uvicorn workers sharing one world in a real Redis: the whole conformance suite, and a worker
killed mid-stream whose client resumes on the other worker with `after` and loses nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bench.cpu import descendants
from conformance.server import ReferenceServer

from .scan import pickled
from .whole_suite import whole_suite

REPO = Path(__file__).resolve().parents[2]
SLOW_PROFILE = """
[server]
clock = "system"
ping_interval_ms = 500
[auvy]
seed = "{seed}"
step_ms = 150
start_delay_ms = 0
"""
KEY = {"Authorization": "Bearer auvy_test_acme_rw"}
COMPLETE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
LONG = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"


def two_workers(redis_url: str, profile: Path, *extra: str) -> ReferenceServer:
    return ReferenceServer(profile, extra_args=("--store", redis_url, "--workers", "2", *extra))


def test_more_than_one_worker_needs_a_shared_store() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "--workers", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--store redis://" in done.stderr


# Minutes long, so it runs in `nox -s redis`, not in the `nox -s tests` gate.
@pytest.mark.redis_suite
def test_the_conformance_suite_passes_against_two_workers_sharing_redis(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    suite = whole_suite(tmp_path)
    with two_workers(redis_url, suite.server_profile, *suite.server_args) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "conformance",
                "--target",
                server.url,
                # The target is the reference server: its own decisions are held against it too.
                "--decisions",
                "enforce",
                "--profile",
                str(suite.target),
                "--report-dir",
                str(tmp_path / "reports"),
                "-n",
                "2",
                "-p",
                "no:randomly",
                "-q",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        logged = server.output()[-3000:]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + logged
    # Everything the whole suite made the workers write, and not one pickle among it.
    assert pickled(redis_client, "mock_server:") == []


def listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on 127.0.0.1:`port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            found.add(fields[9])
    return found


def inodes_held_by(pid: int) -> set[str]:
    held = set()
    with contextlib.suppress(OSError):  # it ended meanwhile
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    held.add(target[len("socket:[") : -1])
    return held


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balances on Linux")
def test_each_worker_listens_on_a_socket_of_its_own_and_connections_reach_both(
    redis_url: str, tmp_path: Path
) -> None:
    """On one socket shared by both, ten connections opened at once went all to one worker in
    21 bursts of 30: here each worker has one of its own on the port (besides the harness's,
    which both serve), so 40 connections reach both."""
    profile = tmp_path / "slow.toml"
    profile.write_text(
        SLOW_PROFILE.format(seed=(REPO / "fixtures" / "seed" / "auvy.toml").as_posix()),
        encoding="utf-8",
    )
    with two_workers(redis_url, profile) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert server.pid is not None
        own: dict[int, set[str]] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listening = listening_inodes(port)
            held = {pid: inodes_held_by(pid) & listening for pid in descendants(server.pid)}
            held = {pid: inodes for pid, inodes in held.items() if inodes}
            shared = set.intersection(*held.values()) if held else set()
            own = {pid: inodes - shared for pid, inodes in held.items()}
            if len(own) == 2 and all(own.values()):
                break
            time.sleep(0.1)
        assert len(own) == 2 and all(own.values()), f"listening sockets per worker: {own}"
        a, b = own.values()
        assert not a & b
        answered_by = set()
        with httpx.Client(base_url=server.url, headers={**KEY, "Connection": "close"}) as client:
            for _ in range(40):
                listed = client.get("/auvy/v1/jobs")
                assert listed.status_code == 200, listed.text
                answered_by.add(listed.headers["x-mock-worker"])
        assert len(answered_by) == 2, answered_by


@pytest.fixture
def slow_server(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    profile = tmp_path / "slow.toml"
    profile.write_text(
        SLOW_PROFILE.format(seed=(REPO / "fixtures" / "seed" / "auvy.toml").as_posix()),
        encoding="utf-8",
    )
    with two_workers(redis_url, profile) as server:
        yield server.url


def read_events(lines: Iterator[str], limit: int) -> list[tuple[str | None, str]]:
    """The next `limit` events (id, data) from an event stream's lines."""
    events: list[tuple[str | None, str]] = []
    ident = None
    for line in lines:
        if line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("data: "):
            events.append((ident, line[6:]))
            ident = None
            if len(events) >= limit:
                break
    return events


def test_a_client_resumes_on_another_worker_after_one_is_killed_mid_stream(
    slow_server: str,
) -> None:
    client = httpx.Client(base_url=f"{slow_server}/auvy", headers=KEY, timeout=20)
    job = client.post("/v1/jobs", json={"pathway_id": LONG}).json()["job_id"]
    stream_path = f"/v1/jobs/{job}/stream"
    before: list[tuple[str | None, str]] = []
    with client.stream("GET", stream_path) as response:
        assert response.status_code == 200
        victim = int(response.headers["x-mock-worker"].split("@")[0])
        lines = response.iter_lines()
        before = read_events(lines, 3)
        os.kill(victim, signal.SIGKILL)
        # The connection dies with its worker; whatever was buffered is ignored.
        with contextlib.suppress(httpx.HTTPError):
            for _ in lines:
                pass
    last = before[-1][0]
    assert last is not None
    time.sleep(0.5)  # the job keeps running on the surviving worker meanwhile
    after: list[tuple[str | None, str]] = []
    with client.stream("GET", stream_path, params={"after": last}) as response:
        assert response.status_code == 200
        assert response.headers.get("x-stream-truncated") is None
        survivor = int(response.headers["x-mock-worker"].split("@")[0])
        assert survivor != victim
        after = read_events(response.iter_lines(), 4)
    # Nothing lost: the full stream, read once more from the start, is exactly the events seen
    # before the kill followed by those seen after resuming.
    with client.stream("GET", stream_path) as response:
        everything = read_events(response.iter_lines(), len(before) + len(after))
    assert before + after == everything
    ids = [i for i, _ in everything]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in (i or "0-0").split("-")))
    client.post(f"/v1/jobs/{job}/cancel")
    client.close()
