"""What the monitor has observed of each job or run, compact and bounded.

Per job: its owner's tenant, the last status observed (and whether it was final), the terminal
stream event's id, and for AUVY streams the ids seen (packed into ints) with the id ranges some
read fully covered. Jobs are kept in an LRU table: at most `JOB_CAP` jobs (default 2,000), and
per job at most `IDS_CAP` stream ids (default 1,000; a job past it stops being checked for lost
entries). Measured (tracemalloc): about 4 KB for a job whose stream had 30 entries, about 77 KB
at the 1,000-id cap: at most about 155 MB with the defaults, 8 MB for 2,000 typical jobs.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from conformance.stream_ids import InvalidStreamId, StreamId

JOB_CAP = 2_000
IDS_CAP = 1_000


def pack(ident: str) -> int | None:
    """A Redis stream id as one int ordered as the ids are (None if it is not one)."""
    try:
        parsed = StreamId.parse(ident)
    except InvalidStreamId:
        return None
    return (parsed.ms << 64) | parsed.seq


def unpack(value: int) -> str:
    return f"{value >> 64}-{value & (2**64 - 1)}"


@dataclass(slots=True)
class JobState:
    api: str
    job_id: str
    owner: str | None = None
    status: str | None = None
    final: str | None = None  # the terminal status once one was observed
    terminal_event: tuple[int, str] | None = None  # (packed id, type) of the stream's end
    seen: set[int] = field(default_factory=set)
    # Inclusive (low, high) ranges of packed ids a read fully covered: every entry in them
    # was sent by that read.
    covered: list[tuple[int, int]] = field(default_factory=list)
    overflow: bool = False  # more ids than IDS_CAP: lost-entry checks stop for this job

    def add_coverage(self, low: int, high: int, ids: list[int]) -> None:
        if self.overflow:
            return
        self.seen.update(ids)
        if len(self.seen) > IDS_CAP:
            self.overflow = True
            self.seen.clear()
            self.covered.clear()
            return
        ranges = [*self.covered, (low, high)]
        ranges.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in ranges:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.covered = merged

    def is_covered(self, value: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self.covered)


class Jobs:
    """The LRU table of job states, keyed by (api, job id)."""

    def __init__(self, cap: int = JOB_CAP) -> None:
        self.cap = cap
        self._jobs: OrderedDict[tuple[str, str], JobState] = OrderedDict()
        self.evicted = 0

    def get(self, api: str, job_id: str) -> JobState:
        key = (api, job_id)
        state = self._jobs.get(key)
        if state is None:
            state = self._jobs[key] = JobState(api, job_id)
            while len(self._jobs) > self.cap:
                self._jobs.popitem(last=False)
                self.evicted += 1
        else:
            self._jobs.move_to_end(key)
        return state

    def peek(self, api: str, job_id: str) -> JobState | None:
        return self._jobs.get((api, job_id))

    def __len__(self) -> int:
        return len(self._jobs)
