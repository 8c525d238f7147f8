"""Every value under a prefix in Redis, whatever the key's type: what the store really wrote."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

PICKLE = b"\x80"  # every pickle of protocol 2 or later starts with PROTO


def values(client: redis.Redis, prefix: str) -> Iterator[tuple[str, bytes]]:
    """(key, value) for every string, hash field, list item, set or sorted-set member and stream
    field value under `prefix`."""
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()
        kind = client.type(raw)
        found: Any
        if kind == b"string":
            found = [client.get(raw)]
        elif kind == b"hash":
            found = [v for pair in client.hgetall(raw).items() for v in pair]
        elif kind == b"list":
            found = client.lrange(raw, 0, -1)
        elif kind == b"set":
            found = list(client.smembers(raw))
        elif kind == b"zset":
            found = client.zrange(raw, 0, -1)
        elif kind == b"stream":
            entries: Any = client.xrange(raw)
            found = [v for _, fields in entries for v in fields.values()]
        elif kind == b"none":
            continue  # expired since the scan listed it (a lease, a turn)
        else:
            raise AssertionError(f"{key}: unexpected type {kind!r}")
        for value in found:
            if value is not None:
                yield key, value


def pickled(client: redis.Redis, prefix: str) -> list[str]:
    return sorted({key for key, value in values(client, prefix) if value.startswith(PICKLE)})
