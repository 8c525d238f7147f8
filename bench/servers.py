"""Starting the servers under test on pre-bound 127.0.0.1 sockets, and reading their memory.

Both the reference server and the bare baseline are started through
`conformance.server.ReferenceServer`, with the same uvicorn settings, and always stopped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from conformance.server import REPO, ReferenceServer

PROFILES = Path(__file__).resolve().parent / "profiles"
ACME_KEY = "auvy_test_acme_rw"
AUTH = {"Authorization": f"Bearer {ACME_KEY}"}
# Pathways of the seed world (fixtures/seed/auvy.toml).
SUMMARISE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"  # 5 progress steps, then completes
BACKFILL = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"  # 100,000 progress steps
# Another workspace (globex) with a key and a pathway of its own.
GLOBEX_AUTH = {"Authorization": "Bearer auvy_test_globex_rw"}
GLOBEX_SUMMARISE = "7c4f8a0b-9d1e-4f2a-9b6c-8d9e0f1a2b17"
# Strait's seed world (fixtures/seed/strait.toml): acme's key and a job whose runs complete.
STRAIT_KEY = "strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1"
STRAIT_AUTH = {"Authorization": f"Bearer {STRAIT_KEY}"}
STRAIT_COMPLETES = "job_acme_complete"

Sampler = Callable[[], None]


@dataclass(frozen=True)
class UvicornSettings:
    loop: str = "auto"
    http: str = "auto"

    def args(self) -> tuple[str, ...]:
        return ("--loop", self.loop, "--http", self.http)

    def describe(self) -> dict[str, Any]:
        """What `auto` resolves to here: uvicorn prefers uvloop and httptools when installed."""
        has_uvloop = importlib.util.find_spec("uvloop") is not None
        has_httptools = importlib.util.find_spec("httptools") is not None
        return {
            "loop": self.loop,
            "http": self.http,
            "loop_used": ("uvloop" if has_uvloop else "asyncio")
            if self.loop == "auto"
            else self.loop,
            "http_used": ("httptools" if has_httptools else "h11")
            if self.http == "auto"
            else self.http,
            "workers": 1,
            "access_log": False,
        }


@contextmanager
def reference_server(
    profile: str, settings: UvicornSettings, extra: tuple[str, ...] = ()
) -> Iterator[ReferenceServer]:
    """The reference server with `bench/profiles/<profile>.toml`; `extra` adds command-line
    arguments (`--store`, `--workers`)."""
    server = ReferenceServer(PROFILES / f"{profile}.toml", extra_args=(*settings.args(), *extra))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def bare_server(
    settings: UvicornSettings, bodies: Mapping[str, Path] | None = None
) -> Iterator[ReferenceServer]:
    """The baseline; `bodies` adds a route /bare/NAME answering the JSON document in a file."""
    extra = [f"--body={name}={path}" for name, path in (bodies or {}).items()]
    server = ReferenceServer(extra_args=(*settings.args(), *extra), module="bench.bare")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def port_of(server: ReferenceServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def rss_kb(pid: int) -> int | None:
    """Resident memory of a process (VmRSS), in KiB; None where /proc has no such figure."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def client(server: ReferenceServer) -> httpx.Client:
    """A setup client (not a load generator): creates jobs, moves the clock."""
    return httpx.Client(base_url=server.url, timeout=60.0)


def create_job(http: httpx.Client, pathway_id: str) -> str:
    r = http.post("/auvy/v1/jobs", json={"pathway_id": pathway_id}, headers=AUTH)
    r.raise_for_status()
    return str(r.json()["job_id"])


def trigger_run(http: httpx.Client, job_id: str) -> str:
    r = http.post(f"/strait/v1/jobs/{job_id}/trigger", json={"payload": {}}, headers=STRAIT_AUTH)
    r.raise_for_status()
    return str(r.json()["id"])


def run_load(
    plan: dict[str, Any], timeout_s: float, *, every_s: float = 0.25, during: Sampler | None = None
) -> dict[str, Any]:
    """Run `python -m bench.load` with `plan` and return its JSON answer; `during` is called
    every `every_s` while it runs (to sample the server's memory)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(plan))
        proc.stdin.close()
        proc.stdin = None  # communicate() must not flush it again
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"load generator still running after {timeout_s}s")
            if during is not None:
                during()
            time.sleep(every_s)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result
