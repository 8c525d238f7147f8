"""A real `redis-server` on a free loopback port for the Redis store's tests, always stopped.

When the binary is missing it is installed from the Debian package (`apt-get install -y
redis-server`) if this runs as root; otherwise every test here skips, saying why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One throwaway redis-server: no persistence, loopback only, stopped on `stop()`."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory()

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

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip(
            "redis-server is not installed and cannot be installed here (needs root and "
            "apt-get): apt-get install redis-server"
        )
    server = RedisServer(binary)
    try:
        yield server.start()
    finally:
        server.stop()
        server._dir.cleanup()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()
