"""A throwaway haproxy on a free loopback port, balancing round-robin over mock_server processes.

For the several-hosts tests (tests/redis/hosts.py) and reusable by the benchmark. When the binary
is missing it is installed from the Debian package (`apt-get install -y haproxy`) if this runs as
root; otherwise `haproxy_binary` answers None and the caller skips, saying why.

The configuration is HTTP mode with `balance roundrobin`, so every request is balanced on its own,
even several on one keep-alive client connection. Each server is health-checked by a TCP connect
every `check_ms` and marked down at the first failure: a mock_server process killed with SIGKILL
refuses connections at once, so it is out of the rotation within one interval. The check is TCP,
not HTTP, on purpose: an HTTP check would be one more request on the shared world every interval,
and it would mark a live server down whenever the world is slow to answer rather than when the
process is gone. A request that finds a server refusing is re-dispatched to the other
(`option redispatch`, `retries`), and the client and server timeouts are long, so an SSE response
(a ping every few hundred ms, otherwise quiet) streams through for as long as its job runs.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .throwaway import Throwaway, debian_binary

MISSING = (
    "haproxy is not installed and cannot be installed here (needs root and apt-get): "
    "apt-get install haproxy"
)

# Debian installs it in /usr/sbin, which a non-root PATH often lacks.
PLACES = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")


def haproxy_binary() -> str | None:
    return debian_binary(
        "haproxy",
        lambda: shutil.which("haproxy") or next((p for p in PLACES if os.access(p, os.X_OK)), None),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config(port: int, backends: Sequence[str], stats_socket: Path, check_ms: int) -> str:
    """The haproxy.cfg text: a frontend on 127.0.0.1:`port`, `backends` ("host:port") in turn."""
    servers = "\n".join(
        f"    server s{i} {address} check inter {check_ms} fall 1 rise 1"
        for i, address in enumerate(backends)
    )
    return f"""\
global
    maxconn 2000
    stats socket {stats_socket} mode 600 level admin

defaults
    mode http
    # Connecting on loopback takes microseconds; a refused or stalled one is retried elsewhere.
    timeout connect 1s
    # Long: an SSE response is quiet between events and pings, and a job may run for minutes.
    timeout client 10m
    timeout server 10m
    timeout http-request 30s
    timeout http-keep-alive 30s
    retries 3
    option redispatch 1
    # SSE events are small writes the client should get at once, not coalesced.
    option http-no-delay

frontend mock
    bind 127.0.0.1:{port}
    default_backend mocks

backend mocks
    balance roundrobin
{servers}
"""


class Haproxy(Throwaway):
    """One throwaway haproxy in the foreground, stopped on `stop()`; its working directory (the
    configuration and the stats socket) goes on `cleanup()` (or both on leaving a `with`)."""

    def __init__(self, binary: str, backends: Sequence[str], *, check_ms: int = 200) -> None:
        super().__init__(binary)
        self.backends = list(backends)
        self.check_ms = check_ms
        self._stats = Path(self._dir.name) / "stats.sock"
        self._log = Path(self._dir.name) / "haproxy.log"

    def start(self, attempts: int = 3, timeout_s: float = 10.0) -> str:
        """Start it and wait until every backend is UP; return the frontend's URL."""
        for _ in range(attempts):
            # haproxy binds the port itself, so another process could take it between choosing
            # and binding: retry on a new one.
            port = free_port()
            cfg = Path(self._dir.name) / "haproxy.cfg"
            cfg.write_text(config(port, self.backends, self._stats, self.check_ms))
            with self._log.open("wb") as log:
                # -db: stay in the foreground, so the process is ours to wait on and stop.
                self._proc = subprocess.Popen(
                    [self.binary, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + timeout_s
            states: dict[str, str] = {}
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    states = self.states()
                except OSError:
                    states = {}
                if len(states) == len(self.backends) and all(s == "UP" for s in states.values()):
                    self.url = f"http://127.0.0.1:{port}"
                    return self.url
                time.sleep(0.05)
            output = self.output()
            self.stop()
            if "cannot bind socket" not in output:
                raise RuntimeError(
                    f"haproxy did not report every backend UP within {timeout_s}s "
                    f"(last states {states}):\n{output}"
                )
        raise RuntimeError(f"haproxy could not bind a free port in {attempts} attempts")

    def stats(self) -> dict[str, dict[str, str]]:
        """Each backend server's row of haproxy's `show stat` ("host:port" -> column -> value),
        read from its stats socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self._stats))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        names = {f"s{i}": address for i, address in enumerate(self.backends)}
        return {
            names[row["svname"]]: row
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "mocks" and row["svname"] in names
        }

    def states(self) -> dict[str, str]:
        """Each backend server's check status ("host:port" -> "UP", "DOWN", ...)."""
        return {address: row["status"] for address, row in self.stats().items()}

    def requests(self) -> dict[str, int]:
        """How many HTTP requests haproxy has sent each backend server so far."""
        return {address: int(row["req_tot"] or 0) for address, row in self.stats().items()}

    def wait_state(self, backend: str, state: str, timeout_s: float) -> float:
        """Wait until haproxy reports `backend` in `state`; answer how long that took."""
        started = time.monotonic()
        seen = None
        while time.monotonic() - started < timeout_s:
            seen = self.states().get(backend)
            if seen == state:
                return time.monotonic() - started
            time.sleep(0.01)
        raise TimeoutError(
            f"haproxy did not report {backend} {state} within {timeout_s}s (last: {seen})"
        )

    def output(self) -> str:
        try:
            return self._log.read_text(errors="replace")
        except OSError:
            return ""
