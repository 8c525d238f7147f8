"""A real `redis-server` on a free loopback port for the Redis store's tests, always stopped.

When the binary is missing it is installed from the Debian package (`apt-get install -y
redis-server`) if this runs as root; otherwise every test here skips, saying why. The server
itself is `bench.redis_server`, which the benchmark's Redis scenario starts too.

The several-hosts tests (test_hosts.py) also need haproxy, found, installed or skipped for in the
same way by `bench.haproxy`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bench import haproxy
from bench.redis_server import MISSING, RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip(MISSING)
    server = RedisServer(binary)
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def haproxy_binary() -> str:
    binary = haproxy.haproxy_binary()
    if binary is None:
        pytest.skip(haproxy.MISSING)
    return binary
