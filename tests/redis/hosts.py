"""Two separate mock_server processes sharing one world in a real Redis, behind a real haproxy.

Not uvicorn's `--workers`: each process is a `python -m mock_server --store redis://...` of its
own, as on two hosts, and a client reaches them through haproxy's round robin
(bench/haproxy.py), as it would behind a production balancer.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.haproxy import Haproxy
from conformance.server import ReferenceServer


@dataclass
class Hosts:
    """What a test gets: the balancer's URL, each process's own URL, and the handles to kill and
    inspect them."""

    url: str  # haproxy's frontend
    prefix: str  # the store's key prefix, unique to these hosts
    servers: list[ReferenceServer] = field(default_factory=list)
    balancer: Haproxy | None = None

    @property
    def direct(self) -> list[str]:
        return [server.url for server in self.servers]

    def output(self) -> str:
        """What each process printed, for a failure message."""
        logs = [f"--- {s.url} (pid {s.pid}):\n{s.output()[-3000:]}" for s in self.servers]
        if self.balancer is not None:
            logs.append(f"--- haproxy:\n{self.balancer.output()[-2000:]}")
        return "\n".join(logs)


@contextlib.contextmanager
def two_hosts(
    redis_url: str, haproxy: str, profile: Path, *extra: str, check_ms: int = 200
) -> Iterator[Hosts]:
    """Start two processes on one store (a prefix of their own in `redis_url`'s database) and an
    haproxy balancing over them; stop all three whatever happens."""
    prefix = f"hosts-{secrets.token_hex(4)}:"
    store = f"{redis_url}?prefix={prefix}"
    hosts = Hosts(url="", prefix=prefix)
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            server = ReferenceServer(profile, extra_args=("--store", store, *extra))
            stack.callback(server.stop)
            hosts.servers.append(server)
            # One after the other: the first publishes the seeded world, the second joins it
            # (README, "Several workers"), as a second host started later would.
            server.start(timeout_s=60)
        balancer = Haproxy(haproxy, [u.removeprefix("http://") for u in hosts.direct])
        stack.callback(balancer.cleanup)
        hosts.balancer = balancer
        hosts.url = balancer.start()
        yield hosts
