"""`SharedScheduler`: the timers of a world shared through Redis, one record each.

Every pending timer is a record of the store `timers` (`<prefix>records:timers`), named by its
sequence number, so a section writes the timers it added, ran or cancelled, and nothing else of
them: the live document holds only the sequence counter, whatever the number of running jobs.
The heap that orders them and the key -> timer table (`Scheduler.cancel(key)`) are this
process's index of those records: updated record by record from other workers' commits
(`load_record`), rebuilt (`reindex`) on joining a world or rolling back a refused section.
Cancelling or running a timer deletes its record; a timer filed under a key records the key
(cleared when the key is released or taken by a newer timer), so every worker can tell which
timer a key names without two documents having to share one object.

The sequence numbers are made by each worker, not counted in the live document: a counter every
section bumps would be a write every other section conflicts with (see shared.py), so two
requests creating jobs on different workers could never commit side by side. A number is
(the world version the section loaded, a random salt of this process, a count within that
version): numbers still grow with the world's history, so timers due at the same time run in
the order of the worlds their sections began on (within one, the order they were made), and
two workers that drew the same salt at the same version write the
same record name, which the commit's version check refuses like any other conflict. The commit
also keeps each timer's due time in a Redis sorted set, so that every commit can tell the
change feed when the world's next timer is due, which no single worker knows once commits of
different workers land side by side.
"""

from __future__ import annotations

import heapq
import secrets

from ..model.scheduler import Callback, Scheduler, Timer, TimerKey
from .records import SharedRecords


class SharedScheduler(Scheduler):
    # This process's index of the records and its driver's wake-up: never part of the world.
    LOCAL = frozenset(
        {"on_schedule", "_heap", "_keyed", "records", "_seq", "_version", "_salt", "_count"}
    )
    # A sequence number: version << VERSION_SHIFT | salt << SALT_SHIFT | count.
    VERSION_SHIFT, SALT_SHIFT = 40, 24

    def __init__(self) -> None:
        super().__init__()
        self.records: SharedRecords[Timer] = SharedRecords("timers")
        self._version = 0
        self._salt = secrets.randbits(self.VERSION_SHIFT - self.SALT_SHIFT)
        self._count = 0

    def begin(self, version: int) -> None:
        """A section begins on the world at `version`: the numbers it makes sort after every
        timer of that world."""
        if version != self._version:
            self._version = version
            self._count = 0

    def _next_seq(self) -> int:
        self._count += 1
        if self._count >= 1 << self.SALT_SHIFT:
            raise OverflowError("more timers made on one world version than numbers for them")
        return (
            max(self._version, 0) << self.VERSION_SHIFT
            | self._salt << self.SALT_SHIFT
            | self._count
        )

    def at(self, due_ms: int, callback: Callback, key: TimerKey | None = None) -> Timer:
        if key is not None:
            old = self._keyed.get(key)
            if old is not None:
                self._unfile(old)
        timer = super().at(due_ms, callback, key)
        self.records[str(timer.seq)] = timer
        return timer

    def _unfile(self, timer: Timer) -> None:
        timer.key = None
        name = str(timer.seq)
        # A timer that is running (its record already gone) has nothing left to write.
        if self.records.current(name) is timer:
            self.records[name] = timer

    def release(self, key: TimerKey) -> None:
        timer = self._keyed.pop(key, None)
        if timer is not None:
            self._unfile(timer)

    def cancel(self, key: TimerKey) -> None:
        timer = self._keyed.pop(key, None)
        if timer is None:
            return
        timer.cancel()
        name = str(timer.seq)
        if self.records.current(name) is timer:
            del self.records[name]

    def _live(self, timer: Timer) -> bool:
        # The heap may hold timers whose records another worker's commit (or a rollback) removed.
        return not timer.cancelled and self.records.current(str(timer.seq)) is timer

    def next_due(self) -> int | None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0].due_ms if heap else None

    def run_due(self, now_ms: int) -> int:
        ran = 0
        heap = self._heap
        while heap and heap[0].due_ms <= now_ms:
            timer = heapq.heappop(heap)
            if not self._live(timer):
                continue
            del self.records[str(timer.seq)]
            timer.callback(timer.due_ms)
            ran += 1
        return ran

    def clear(self) -> None:
        super().clear()
        self.records.clear()

    def __len__(self) -> int:
        return len(self.records)

    def load_record(self, name: str, value: Timer | None, blob: bytes) -> None:
        """Take another worker's version of one timer record (None: it was removed), and
        update the index to match: a commit changes a few timers, so this costs what the commit
        changed, not what the world holds."""
        old = self.records.current(name)
        if old is not None and old.key is not None and self._keyed.get(old.key) is old:
            del self._keyed[old.key]
        self.records.loaded(name, value, blob)
        timer = self.records.current(name)
        if timer is None:
            # Its heap entry, if any, is skipped when it comes up (`_live`); a heap grown
            # mostly stale is rebuilt.
            if len(self._heap) > 2 * self.records.size() + 64:
                self.reindex()
            return
        if timer.key is not None:
            self._keyed[timer.key] = timer
        if timer is not old:
            heapq.heappush(self._heap, timer)

    def reindex(self) -> None:
        """Rebuild the heap and the key table from the records as they now are (after joining
        a world, or rolling a refused section back)."""
        timers = [t for t in self.records.untouched_values() if not t.cancelled]
        heapq.heapify(timers)
        self._heap = timers
        self._keyed = {t.key: t for t in timers if t.key is not None}
