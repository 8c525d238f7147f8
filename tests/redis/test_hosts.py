"""Two separate mock_server processes (two hosts, in effect) sharing one world in a real Redis,
behind a real haproxy balancing round robin: every request may land on either process."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.paced import ci_profile_at

from .hosts import Hosts, two_hosts
from .scan import pickled
from .whole_suite import whole_suite

REPO = Path(__file__).resolve().parents[2]

KEY = {"Authorization": "Bearer auvy_test_acme_rw"}
COMPLETE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"


def pid_of(response: httpx.Response) -> int:
    """The answering process: `x-mock-worker` is `<pid>@<host>:<tag>`."""
    return int(response.headers["x-mock-worker"].split("@")[0])


def test_the_balancer_alternates_between_the_two_processes_even_on_one_connection(
    redis_url: str, haproxy_binary: str, tmp_path: Path
) -> None:
    paced = ci_profile_at(tmp_path, step_ms=40, start_delay_ms=20)
    with two_hosts(redis_url, haproxy_binary, paced) as hosts:
        pids = {server.pid for server in hosts.servers}
        assert len(pids) == 2
        # One client, one keep-alive connection to haproxy: each request is balanced anew.
        with httpx.Client(base_url=f"{hosts.url}/auvy", headers=KEY, timeout=10) as client:
            created = client.post("/v1/jobs", json={"pathway_id": COMPLETE})
            assert created.status_code == 200, created.text
            job = created.json()["job_id"]
            answered = [pid_of(created)]
            for _ in range(7):
                status = client.get(f"/v1/jobs/{job}/status")
                # The job written through one process is read through the other: one world.
                assert status.status_code == 200, status.text
                answered.append(pid_of(status))
        assert set(answered) == pids, hosts.output()
        assert all(a != b for a, b in itertools.pairwise(answered)), answered


def run_suite(hosts: Hosts, profile: Path, reports: Path, *options: str) -> dict[str, object]:
    """Run the conformance suite against the balancer; its exit status must be 0 (conformant).
    Answers the suite's JSON report."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance",
            "--target",
            hosts.url,
            # The target is the reference server: its own decisions are held against it too.
            "--decisions",
            "enforce",
            "--profile",
            str(profile),
            "--report-dir",
            str(reports),
            "-p",
            "no:randomly",
            "-q",
            *options,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + hosts.output()
    report: dict[str, object] = json.loads((reports / "conformance.json").read_text())
    assert report["verdict"] == "conformant", report["summary"]
    # Through round robin both processes took a share of the suite's requests.
    assert hosts.balancer is not None
    served = hosts.balancer.requests()
    assert len(served) == 2 and min(served.values()) > 0, served
    return report


# Requirement ids (or prefixes, as --req takes them) of the quick slice: streams resumed with
# `after` (AUVY) and Strait's status stream, both SSE through haproxy; AVA's cancel; Strait's
# retry, dead-lettering and DLQ replay. Each a multi-request exchange whose requests land on both
# processes in turn.
SLICE = (
    "auvy.stream.after-exclusive",
    "auvy.stream.resume-after-disconnect",
    "auvy.stream.agrees-with-status",
    "ava.jobs.cancel",
    "strait.lifecycle.retry",
    "strait.lifecycle.dead-letter",
    "strait.dlq-replay",
    "strait.stream.status-changes",
)


def test_a_slice_of_the_conformance_suite_passes_through_the_balancer(
    redis_url: str, haproxy_binary: str, tmp_path: Path
) -> None:
    # The pace of the whole-suite run below (40 ms steps), for the same reason.
    paced = ci_profile_at(tmp_path, step_ms=40, start_delay_ms=20)
    options = [arg for req in SLICE for arg in ("--req", req)]
    with two_hosts(redis_url, haproxy_binary, paced) as hosts:
        report = run_suite(
            hosts, REPO / "fixtures" / "reference.toml", tmp_path / "reports", *options
        )
    # Not a vacuous pass: every requirement the slice names was checked, by tests that ran and
    # passed, none skipped.
    statuses = {
        str(r["id"]): str(r["status"])
        for r in report["requirements"]  # type: ignore[attr-defined]
    }
    for wanted in SLICE:
        matched = {i: s for i, s in statuses.items() if i == wanted or i.startswith(wanted + ".")}
        assert matched and set(matched.values()) == {"pass"}, (wanted, matched)
    counts = report["summary"]["tests"]  # type: ignore[index]
    assert counts["passed"] >= 20 and counts["passed"] == counts["total"], counts


# Minutes long, so it runs in `nox -s redis`, not in the `nox -s tests` gate.
@pytest.mark.redis_suite
def test_the_whole_conformance_suite_passes_through_the_balancer(
    redis_url: str, haproxy_binary: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    suite = whole_suite(tmp_path)
    with two_hosts(redis_url, haproxy_binary, suite.server_profile, *suite.server_args) as hosts:
        report = run_suite(hosts, suite.target, tmp_path / "reports", "-n", "2")
        prefix = hosts.prefix
    counts = report["summary"]["tests"]  # type: ignore[index]
    assert counts["failed"] == 0 and counts["error"] == 0, counts
    # Everything the whole suite made the processes write, and not one pickle among it.
    assert pickled(redis_client, prefix) == []


def read_events(
    client: httpx.Client, base: str, job: str, after: str | None, most: int | None
) -> list[tuple[str, str]]:
    """(id, type) of the events one connection to a job's stream gives, up to `most`."""
    params = {} if after is None else {"after": after}
    events: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    with client.stream("GET", f"{base}/auvy/v1/jobs/{job}/stream", params=params) as response:
        assert response.status_code == 200, response.status_code
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    events.append((fields.get("id", ""), json.loads(fields["data"])["type"]))
                    if most is not None and len(events) >= most:
                        break
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return events


def resume_one_at_a_time(base_urls: list[str], deadline: float, start: int) -> list[str]:
    """Start jobs and read each one event per connection, each connection on the other process
    than the one before, until `deadline`. Answers what went wrong."""
    problems: list[str] = []
    turn = itertools.count(start)
    with httpx.Client(headers=KEY, timeout=10) as client:
        while time.monotonic() < deadline and not problems:
            created = client.post(
                f"{base_urls[next(turn) % 2]}/auvy/v1/jobs", json={"pathway_id": COMPLETE}
            )
            job = created.json()["job_id"]
            got: list[tuple[str, str]] = []
            after = None
            for _ in range(100):
                part = read_events(client, base_urls[next(turn) % 2], job, after, 1)
                got += part
                if not part or part[-1][1] in ("complete", "error"):
                    break
                after = part[-1][0]
            whole = read_events(client, base_urls[next(turn) % 2], job, None, None)
            if got != whole:
                problems.append(f"job {job}: one at a time {got}, at once {whole}")
    return problems


# Tens of seconds, so it runs in `nox -s redis`. The race it guards against (a job finishing
# between a stream handler's read and its response's start) showed in about one job in 300.
@pytest.mark.redis_suite
def test_one_event_resumes_alternating_between_processes_lose_nothing(
    redis_url: str, haproxy_binary: str, tmp_path: Path
) -> None:
    paced = ci_profile_at(tmp_path, step_ms=40, start_delay_ms=20)
    with two_hosts(redis_url, haproxy_binary, paced) as hosts:
        deadline = time.monotonic() + 30
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            runs = [pool.submit(resume_one_at_a_time, hosts.direct, deadline, n) for n in range(6)]
            problems = [p for run in runs for p in run.result(timeout=120)]
        assert not problems, "\n".join(problems[:3]) + hosts.output()
