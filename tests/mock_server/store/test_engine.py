"""`SharedEngine`: which timers a request runs under the Redis store (no Redis needed)."""

from __future__ import annotations

import asyncio

from mock_server.clock import ManualClock, SystemClock
from mock_server.model.scheduler import Call
from mock_server.store.shared import SharedEngine


class Ticks:
    def __init__(self) -> None:
        self.ran: list[int] = []

    def tick(self, due_ms: int) -> None:
        self.ran.append(due_ms)


def engine_with_a_due_timer(clock: ManualClock | SystemClock) -> tuple[SharedEngine, Ticks]:
    engine = SharedEngine(clock)
    ticks = Ticks()
    engine.timers.at(clock.now_ms() - 1, Call(ticks, "tick"))
    engine.shared = True
    return engine, ticks


def in_a_section(engine: SharedEngine, work: object) -> int:
    async def run() -> int:
        engine.begin_section()
        try:
            return work()  # type: ignore[operator,no-any-return]
        finally:
            engine.end_section()

    return asyncio.run(run())


def test_a_request_on_a_follower_leaves_due_timers_to_the_leader() -> None:
    engine, ticks = engine_with_a_due_timer(SystemClock())
    assert in_a_section(engine, engine.run_due) == 0
    assert ticks.ran == []
    # The driver (run_ticks) runs them wherever it leads.
    assert in_a_section(engine, engine.run_ticks) == 1


def test_a_request_on_the_leader_runs_due_timers_first() -> None:
    engine, ticks = engine_with_a_due_timer(SystemClock())
    engine.leading = True
    assert in_a_section(engine, engine.run_due) == 1
    assert len(ticks.ran) == 1


def test_with_a_manual_clock_every_worker_runs_due_timers() -> None:
    # No driver runs on a manual clock: advancing it (a request) runs what became due.
    engine, ticks = engine_with_a_due_timer(ManualClock())
    assert in_a_section(engine, engine.run_due) == 1
    assert len(ticks.ran) == 1


def test_outside_a_section_nothing_runs() -> None:
    engine, ticks = engine_with_a_due_timer(SystemClock())
    engine.leading = True
    assert engine.run_due() == 0 and ticks.ran == []


def test_another_task_runs_no_timer_while_a_section_is_open() -> None:
    """An SSE reader's task, begun before the section, is not part of it."""
    engine, ticks = engine_with_a_due_timer(SystemClock())
    engine.leading = True

    async def run() -> tuple[int, int]:
        started = asyncio.Event()
        go_on = asyncio.Event()

        async def reader() -> int:
            started.set()
            await go_on.wait()
            return engine.run_due()

        other = asyncio.create_task(reader())
        await started.wait()
        engine.begin_section()
        try:
            go_on.set()
            elsewhere = await other
            return elsewhere, engine.run_due()
        finally:
            engine.end_section()

    assert asyncio.run(run()) == (0, 1)
    assert len(ticks.ran) == 1
