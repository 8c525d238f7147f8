"""Two separate mock_server processes (two hosts, in effect) sharing one world in a real Redis,
behind a real haproxy balancing round robin: every request may land on either process."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx

from tests.paced import ci_profile_at

from .hosts import two_hosts

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
