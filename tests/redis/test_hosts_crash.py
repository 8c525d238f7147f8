"""One of two hosts killed (SIGKILL) while jobs run and clients stream them through haproxy.

What README's "Several workers" section promises of a dead worker: the others keep serving, the
jobs run on, and every stream stays one consistent history (events commit with their state, so
what a client saw is never rolled back, and no step runs twice).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.haproxy import Haproxy

from .hosts import Hosts, two_hosts

REPO = Path(__file__).resolve().parents[2]
KEY = {"Authorization": "Bearer auvy_test_acme_rw"}
ACME = "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01"
COMPLETES = "c0ffee00-0b7e-4f3a-8a9b-1c2d3e4f5a01"
FAILS = "c0ffee00-0b7e-4f3a-8a9b-1c2d3e4f5a02"
STEPS = 30
TOKENS = [f"t{i} " for i in range(STEPS)]
# Two pathways of thirty steps each (the seed's own finish in five or two): at 150 ms a step a
# job runs about five seconds, long enough to be mid-run when the host dies.
PATHWAYS = f"""
[[pathways]]
id = "{COMPLETES}"
workspace = "{ACME}"
name = "crash-complete (thirty token steps, then completes)"
script = [
  {{ progress = {STEPS}, name = "count", tokens = {json.dumps(TOKENS)} }},
  {{ complete = {{ steps = {STEPS} }} }},
]

[[pathways]]
id = "{FAILS}"
workspace = "{ACME}"
name = "crash-fail (thirty steps, then fails)"
script = [
  {{ progress = {STEPS}, name = "import" }},
  {{ fail = "upstream returned 502 while importing rows" }},
]
"""
PROFILE = """
[server]
clock = "system"
ping_interval_ms = 500
[auvy]
seed = "{seed}"
step_ms = 150
start_delay_ms = 0
"""
TERMINAL = {"complete", "error"}
JOB_STATUS = {"complete": "completed", "error": "failed"}
WITHIN_S = 1.0  # how soon after the kill the survivor must answer, directly and via haproxy


class TooSlow(AssertionError):
    """The survivor answered, but not within WITHIN_S of the kill."""


def pid_of(response: httpx.Response) -> int:
    return int(response.headers["x-mock-worker"].split("@")[0])


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, data) of each event of an open AUVY stream; comments (pings) are skipped."""
    ident: str | None = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("data: "):
            assert ident is not None, f"an event without an id: {line}"
            yield ident, json.loads(line[6:])
            ident = None


@dataclass
class Watcher:
    """A client streaming one job through haproxy from the start, in a thread of its own."""

    base: str
    job: str
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pid: int | None = None
    ended: str = ""  # "terminal", or the error that cut the stream
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            # The read timeout bounds a silent stream: pings come every 500 ms.
            with (
                httpx.Client(base_url=self.base, headers=KEY, timeout=10) as client,
                client.stream("GET", f"/v1/jobs/{self.job}/stream") as response,
            ):
                self.pid = pid_of(response)
                for entry in events(response):
                    self.seen.append(entry)
                    if entry[1].get("type") in TERMINAL:
                        self.ended = "terminal"
                        return
            self.ended = "closed before a terminal event"
        except httpx.HTTPError as exc:
            self.ended = f"{type(exc).__name__}: {exc}"


def ident_key(ident: str) -> tuple[int, int]:
    ms, seq = ident.split("-")
    return int(ms), int(seq)


def replay(base: str, job: str, timeout_s: float = 20.0) -> list[tuple[str, dict[str, Any]]]:
    """A finished job's whole stream, read from the start until its terminal event."""
    got: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    with (
        httpx.Client(base_url=base, headers=KEY, timeout=timeout_s) as client,
        client.stream("GET", f"/v1/jobs/{job}/stream") as response,
    ):
        assert response.status_code == 200, response.read()
        for entry in events(response):
            got.append(entry)
            if entry[1].get("type") in TERMINAL or time.monotonic() > deadline:
                break
    return got


def check_history(job: str, stream: list[tuple[str, dict[str, Any]]], status: str) -> None:
    """One consistent history: ids strictly increase; progress never repeats nor goes back;
    every step's token appears once, in order; exactly one terminal event, last, agreeing with
    the job's status."""
    ids = [ident for ident, _ in stream]
    assert all(ident_key(a) < ident_key(b) for a, b in itertools.pairwise(ids)), (job, ids)
    progress = [e["progress"] for _, e in stream if e.get("type") == "state_update"]
    assert progress == sorted(progress), (job, progress)
    stepping = [
        e["progress"]
        for _, e in stream
        if e.get("type") == "state_update" and e.get("status") == "running"
    ]
    assert len(stepping) == len(set(stepping)), (job, "a progress value repeated", stepping)
    tokens = [e.get("content") for _, e in stream if e.get("type") == "token"]
    terminals = [e for _, e in stream if e.get("type") in TERMINAL]
    assert len(terminals) == 1, (job, terminals)
    assert stream[-1][1] is terminals[0], (job, "events after the terminal one", stream[-3:])
    assert JOB_STATUS[terminals[0]["type"]] == status, (job, terminals[0], status)
    # A step without tokens names itself: "import 3/30 ".
    counted = [f"import {i + 1}/{STEPS} " for i in range(STEPS)]
    expected = TOKENS if status == "completed" else counted
    assert tokens == expected, (job, tokens)


def kill_mid_run(victim: int, url: str) -> str:
    """SIGKILL `victim` (serving at `url`) while it is busy: frozen first (SIGSTOP) for 200 ms,
    so whatever section it was in (a client keeps sending it status reads, and it leads the
    timer driver) is overtaken by the survivor's commits, then killed. The store holds no lock,
    so nothing the victim had begun may hold the survivor up or reach Redis. Answers what
    happened, for the report."""
    stop = threading.Event()

    def keep_it_busy() -> None:
        with httpx.Client(base_url=url, headers=KEY, timeout=0.5) as busy:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    busy.get("/v1/jobs")

    busy = threading.Thread(target=keep_it_busy, daemon=True)
    busy.start()
    try:
        time.sleep(0.3)  # under load: reads and timer ticks in flight
        os.kill(victim, signal.SIGSTOP)
        time.sleep(0.2)
        os.kill(victim, signal.SIGKILL)
        return "killed after a 200 ms freeze while serving reads and leading the timer driver"
    finally:
        # Had anything above failed between SIGSTOP and SIGKILL, the victim would stay paused
        # (and its teardown wait the full SIGTERM grace): let it go on.
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
        stop.set()
        busy.join(timeout=5)


def marked_down(balancer: Haproxy, backend: str, since: float) -> float:
    """Seconds from `since` until haproxy reports `backend` DOWN (deadline 10 s)."""
    balancer.wait_state(backend, "DOWN", 10.0)
    return time.monotonic() - since


def survivor_answers(base: str, job: str, since: float) -> float:
    """Seconds from `since` until `base` answers a status GET with 200 (deadline 10 s)."""
    deadline = since + 10.0
    last = "nothing"
    with httpx.Client(base_url=base, headers=KEY, timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"/v1/jobs/{job}/status")
                if response.status_code == 200:
                    return time.monotonic() - since
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.01)
    raise AssertionError(f"{base} gave no 200 status within 10 s of the kill; last: {last}")


def test_a_host_killed_mid_run_leaves_the_other_serving_and_every_stream_consistent(
    redis_url: str, haproxy_binary: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    seed = tmp_path / "auvy.toml"
    seed.write_text(
        (REPO / "fixtures" / "seed" / "auvy.toml").read_text(encoding="utf-8") + PATHWAYS,
        encoding="utf-8",
    )
    profile = tmp_path / "crash.toml"
    profile.write_text(PROFILE.format(seed=seed.as_posix()), encoding="utf-8")
    with two_hosts(redis_url, haproxy_binary, profile) as hosts:
        crash(hosts, redis_client)


def crash(hosts: Hosts, redis_client: redis.Redis) -> None:
    balancer = hosts.balancer
    assert balancer is not None
    via = f"{hosts.url}/auvy"
    jobs: dict[str, str] = {}  # job id -> the pathway it runs
    creators: set[int] = set()
    with httpx.Client(base_url=via, headers=KEY, timeout=10) as client:
        for i in range(6):
            pathway = COMPLETES if i % 2 == 0 else FAILS
            created = client.post("/v1/jobs", json={"pathway_id": pathway})
            assert created.status_code == 200, created.text
            jobs[created.json()["job_id"]] = pathway
            creators.add(pid_of(created))
    assert len(creators) == 2, "round robin should have created jobs through both processes"
    watchers = [Watcher(via, job) for job in jobs]
    for watcher in watchers:
        watcher.start()
    # Mid-run: every client has seen a few events, no job has finished.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(len(w.seen) >= 3 for w in watchers):
        time.sleep(0.01)
    assert all(len(w.seen) >= 3 for w in watchers), [(w.job, w.seen, w.ended) for w in watchers]
    assert {w.pid for w in watchers} == creators, "streams should be served by both processes"
    assert not any(w.ended for w in watchers), "a job finished before the kill: too fast a pace"

    # The victim: the process holding the timer driver's lease, so its death also hands the
    # timers over (once the lease expires).
    pids = {server.pid: server for server in hosts.servers if server.pid is not None}
    driver = redis_client.get(f"{hosts.prefix}driver")
    victim = int(driver.split(b"@")[0]) if isinstance(driver, bytes) else next(iter(pids))
    assert victim in pids, (victim, pids)
    survivor = next(s for pid, s in pids.items() if pid != victim)
    victim_address = pids[victim].url.removeprefix("http://")
    how = kill_mid_run(victim, f"{pids[victim].url}/auvy")
    killed = time.monotonic()
    running = [w.job for w in watchers if not w.ended]
    assert running, "every job had finished before the kill: too fast a pace"

    some_job = next(iter(jobs))
    # Both clocks run from the kill at once: the survivor answering directly, and haproxy's
    # health check marking the victim down (which does not wait on the survivor).
    with ThreadPoolExecutor(2) as pool:
        direct = pool.submit(survivor_answers, f"{survivor.url}/auvy", some_job, killed)
        down = pool.submit(marked_down, balancer, victim_address, killed)
        down_s = down.result()
        direct_s = direct.result()
    with httpx.Client(base_url=via, headers=KEY, timeout=10) as client:
        through = client.get(f"/v1/jobs/{some_job}/status")
    via_s = time.monotonic() - killed
    assert through.status_code == 200 and pid_of(through) == survivor.pid, through.text
    timings = (
        f"{how}; after the kill: survivor answered directly in {direct_s:.2f}s, "
        f"haproxy marked the victim DOWN at {down_s:.2f}s, answered through it at {via_s:.2f}s"
    )

    # The jobs run on in the survivor; the victim's clients lost their connections.
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=f"{survivor.url}/auvy", headers=KEY, timeout=10) as client:
        while time.monotonic() < deadline and len(statuses) < len(jobs):
            for job in jobs:
                status = client.get(f"/v1/jobs/{job}/status").json()["status"]
                if status in ("completed", "failed", "cancelled"):
                    statuses[job] = status
            time.sleep(0.05)
    assert len(statuses) == len(jobs), f"jobs unfinished 30 s after the kill: {statuses}; {timings}"
    for watcher in watchers:
        assert watcher.thread is not None
        watcher.thread.join(timeout=20)
        assert not watcher.thread.is_alive(), f"the stream of {watcher.job} never ended"
        if watcher.pid == survivor.pid:
            assert watcher.ended == "terminal", (watcher.job, watcher.ended)

    for watcher in watchers:
        job = watcher.job
        stream = replay(f"{survivor.url}/auvy", job)
        assert statuses[job] == ("completed" if jobs[job] == COMPLETES else "failed"), statuses
        check_history(job, stream, statuses[job])
        # Nothing a client saw live was rolled back or rewritten: the live events (up to the
        # victim's death, or to the end) are the start of the stream as it now reads.
        assert stream[: len(watcher.seen)] == watcher.seen, (job, watcher.ended)
    # Last, so that a failure here means everything above held: the history is sound, only
    # the survivor was slow.
    if max(direct_s, via_s) > WITHIN_S:
        raise TooSlow(timings)
    print(timings)  # shown with -s
