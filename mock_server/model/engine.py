"""The clock, the timers and change notifications shared by every API's model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from ..clock import Clock
from .scheduler import Scheduler
from .stream_id import StreamId

Listener = Callable[[], None]


class Engine:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.scheduler = Scheduler()
        self._listeners: defaultdict[str, set[Listener]] = defaultdict(set)
        # Set by a shared store: brings this process's model up to at least the world Redis
        # holds now, so a stream reader judges the entries it just read (is this the run's
        # latest change?) with a model that knows them.
        self.catch_up: Callable[[], Awaitable[None]] | None = None
        # Set by a shared store: `await prefetch(store, key, after)` fetches a stream read
        # without blocking, for the reader's `read_after` that follows (store: "auvy", ...).
        self.prefetch: Callable[[str, str, StreamId | None], Awaitable[None]] | None = None

    def now(self) -> int:
        return self.clock.now_ms()

    def run_due(self) -> int:
        return self.scheduler.run_due(self.clock.now_ms())

    def subscribe(self, key: str, listener: Listener) -> Callable[[], None]:
        """Call `listener` whenever `key` changes (a stream append, a status change)."""
        self._listeners[key].add(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(key)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[key]

        return unsubscribe

    def notify(self, key: str) -> None:
        for listener in list(self._listeners.get(key, ())):
            listener()

    def subscribers(self, key: str) -> int:
        return len(self._listeners.get(key, ()))
