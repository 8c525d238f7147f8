"""Where the CPU went during a load run: each process of the server under test, the
redis-server beside it, and the load generator, in cores (CPU seconds per second of the run).

A ratio between two setups means little without it on a machine of two cores: with 2 workers
the workers, Redis and the load generator share both, and the kernel spreads the load's
keep-alive connections over the workers as it accepts them, sometimes nearly all to one. Read
from /proc (Linux); elsewhere the figures are left out.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # no sysconf: not Linux
    TICKS = 0


def _stat_fields(stat: str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 2), which may hold spaces
    and parentheses: they follow the last ')'. [1] is the parent, [11] and [12] user and
    system time in ticks."""
    return stat.rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float | None:
    """User plus system CPU seconds the process has used; None when /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if not TICKS:
        return None
    fields = _stat_fields(stat)
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (uvicorn's workers under its supervisor, and theirs)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        parent_of[int(entry.name)] = int(_stat_fields(stat)[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for child, parent in parent_of.items() if parent in frontier]
        found += below
        frontier = below
    return sorted(found)


def _children_cpu_s() -> float:
    # What the waited-for children of this process used: the load generator, once it ended.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def metered(
    server_pid: int | None, redis_pid: int | None = None
) -> Iterator[Callable[[], dict[str, Any] | None]]:
    """Measure the block (a `run_load`); the yielded function answers {"server": cores of the
    server's process and of each child that used any, busiest first, "server_s": the CPU
    seconds of them all, "redis": cores, "load": the load generator's cores} once the block has
    ended, or None without /proc. A process the server started meanwhile (a worker restarted)
    counts from its start."""
    pids: list[int] = []
    if server_pid is not None and TICKS:
        pids = [server_pid, *descendants(server_pid)]
    others = [] if redis_pid is None else [redis_pid]
    before = _read([*pids, *others])
    load_before = _children_cpu_s()
    started = time.monotonic()
    result: dict[str, Any] | None = None

    def figures() -> dict[str, Any] | None:
        return result

    yield figures
    wall = time.monotonic() - started
    if not pids or server_pid is None or wall <= 0:
        return
    pids = sorted({*pids, *descendants(server_pid)})
    after = _read([*pids, *others])
    if server_pid not in after:
        return
    used_s = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    used = {pid: seconds / wall for pid, seconds in used_s.items()}
    server = sorted((used[pid] for pid in pids if pid in used), reverse=True)
    result = {
        "server": [round(c, 3) for c in server if c >= 0.005],
        "server_s": round(sum(used_s[pid] for pid in pids if pid in used_s), 3),
        "redis": round(used[redis_pid], 3) if redis_pid in used else None,
        "load": round((_children_cpu_s() - load_before) / wall, 3),
    }


def _read(pids: Iterable[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        seconds = cpu_s(pid)
        if seconds is not None:
            out[pid] = seconds
    return out
