"""A throwaway `redis-server` on a free loopback port, for the Redis store's tests and benchmark.

When the binary is missing it is installed from the Debian package (`apt-get install -y
redis-server`) if this runs as root; otherwise `redis_server_binary` answers None and the caller
skips, saying why. Needs redis-py (the `redis` extra).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import redis

from .throwaway import Throwaway, debian_binary

MISSING = (
    "redis-server is not installed and cannot be installed here (needs root and apt-get): "
    "apt-get install redis-server"
)


def redis_server_binary() -> str | None:
    return debian_binary("redis-server", lambda: shutil.which("redis-server"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer(Throwaway):
    """One throwaway redis-server: no persistence, loopback only, stopped on `stop()`; its
    working directory goes on `cleanup()` (or both on leaving a `with` block)."""

    def __init__(self, binary: str) -> None:
        super().__init__(binary)

    def start(self, attempts: int = 3) -> str:
        for _ in range(attempts):
            # redis-server cannot take an inherited socket, so another process could take the
            # port between choosing and binding it: retry on a new one.
            port = free_port()
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self._dir.name,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = redis.Redis(port=port, socket_timeout=1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    if client.ping():
                        client.close()
                        self.url = f"redis://127.0.0.1:{port}/0"
                        return self.url
                except redis.RedisError:
                    time.sleep(0.05)
            client.close()
            self.stop()
        raise RuntimeError("redis-server did not start")
