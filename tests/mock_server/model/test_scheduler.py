from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mock_server.clock import ManualClock
from mock_server.model.engine import Engine
from mock_server.model.scheduler import Callback, Scheduler


def appender(log: list[str], name: str) -> Callback:
    def callback(_now: int) -> None:
        log.append(name)

    return callback


def test_nothing_runs_before_it_is_due() -> None:
    s = Scheduler()
    log: list[tuple[str, int]] = []
    s.at(100, lambda now: log.append(("a", now)))
    assert s.run_due(99) == 0
    assert log == []
    assert s.next_due() == 100
    assert len(s) == 1


def test_due_timers_run_in_due_order_and_see_their_due_time() -> None:
    s = Scheduler()
    log: list[tuple[str, int]] = []
    s.at(30, lambda now: log.append(("c", now)))
    s.at(10, lambda now: log.append(("a", now)))
    s.at(20, lambda now: log.append(("b", now)))
    s.at(40, lambda now: log.append(("d", now)))
    assert s.run_due(35) == 3
    assert log == [("a", 10), ("b", 20), ("c", 30)]
    assert s.next_due() == 40
    assert len(s) == 1


def test_timers_due_at_the_same_time_run_first_in_first_out() -> None:
    s = Scheduler()
    log: list[str] = []
    for name in "abcdef":
        s.at(5, appender(log, name))
    s.run_due(5)
    assert log == list("abcdef")


def test_a_cancelled_timer_never_runs_and_is_not_counted() -> None:
    s = Scheduler()
    log: list[str] = []
    first = s.at(10, lambda _: log.append("first"))
    s.at(20, lambda _: log.append("second"))
    first.cancel()
    assert len(s) == 1
    assert s.next_due() == 20
    assert s.run_due(100) == 1
    assert log == ["second"]


def test_cancelling_every_timer_leaves_nothing_due() -> None:
    s = Scheduler()
    timers = [s.at(t, lambda _: None) for t in (1, 2, 3)]
    for timer in timers:
        timer.cancel()
    assert s.next_due() is None
    assert len(s) == 0
    assert s.run_due(10) == 0


def test_timers_added_by_callbacks_run_in_the_same_pass_when_due() -> None:
    s = Scheduler()
    log: list[tuple[str, int]] = []

    def tick(now: int) -> None:
        log.append(("tick", now))
        if now < 50:
            s.at(now + 10, tick)

    s.at(0, tick)
    assert s.run_due(35) == 4
    assert log == [("tick", 0), ("tick", 10), ("tick", 20), ("tick", 30)]
    assert s.next_due() == 40


def test_a_timer_added_in_the_past_by_a_callback_runs_before_later_ones() -> None:
    s = Scheduler()
    log: list[str] = []

    def add_late(_now: int) -> None:
        s.at(5, appender(log, "late-added"))

    s.at(10, add_late)
    s.at(20, lambda _: log.append("twenty"))
    s.run_due(30)
    assert log == ["late-added", "twenty"]


def test_a_callback_can_cancel_a_later_timer() -> None:
    s = Scheduler()
    log: list[str] = []
    later = s.at(20, lambda _: log.append("later"))
    s.at(10, lambda _: later.cancel())
    assert s.run_due(30) == 1
    assert log == []


def test_on_schedule_is_called_when_a_new_timer_is_the_earliest() -> None:
    s = Scheduler()
    woken: list[int] = []
    s.on_schedule = lambda: woken.append(1)
    s.at(5, lambda _: None)
    s.at(2, lambda _: None)
    assert len(woken) == 2


def test_a_timer_after_the_earliest_does_not_wake_the_driver() -> None:
    # The driver already sleeps until the earliest timer; a later one changes nothing.
    s = Scheduler()
    woken: list[int] = []
    s.on_schedule = lambda: woken.append(1)
    s.at(1, lambda _: None)
    s.at(2, lambda _: None)
    s.at(1, lambda _: None)  # a tie runs after the first: not the earliest either
    assert len(woken) == 1


def test_clear_drops_everything() -> None:
    s = Scheduler()
    s.at(1, lambda _: None)
    s.clear()
    assert s.next_due() is None
    assert s.run_due(100) == 0


def test_the_engine_runs_timers_on_its_clock() -> None:
    clock = ManualClock(1_000)
    engine = Engine(clock)
    seen: list[int] = []
    engine.scheduler.at(1_500, seen.append)
    assert engine.run_due() == 0
    clock.advance(499)
    assert engine.run_due() == 0
    clock.advance(1)
    assert engine.run_due() == 1
    assert seen == [1_500]


def test_engine_notifications_reach_subscribers_until_they_unsubscribe() -> None:
    engine = Engine(ManualClock())
    calls: list[str] = []
    unsubscribe = engine.subscribe("job-1", lambda: calls.append("a"))
    engine.subscribe("job-2", lambda: calls.append("other"))
    engine.notify("job-1")
    assert calls == ["a"]
    assert engine.subscribers("job-1") == 1
    unsubscribe()
    unsubscribe()  # idempotent
    engine.notify("job-1")
    assert calls == ["a"]
    assert engine.subscribers("job-1") == 0


@given(
    st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=30),
    st.integers(0, 60),
)
def test_run_due_is_a_stable_sort_of_the_due_timers(plan: list[tuple[int, bool]], now: int) -> None:
    s = Scheduler()
    ran: list[str] = []
    for index, (due, cancel) in enumerate(plan):
        timer = s.at(due, appender(ran, str(index)))
        if cancel:
            timer.cancel()
    s.run_due(now)
    expected = sorted(
        (i for i, (due, cancel) in enumerate(plan) if due <= now and not cancel),
        key=lambda i: (plan[i][0], i),
    )
    assert ran == [str(i) for i in expected]
    assert len(s) == sum(1 for due, cancel in plan if due > now and not cancel)


def test_a_timer_cancelled_by_its_key_never_runs_and_frees_the_key() -> None:
    s = Scheduler()
    log: list[str] = []
    s.at(10, appender(log, "step"), ("auvy", "j1"))
    s.at(10, appender(log, "other"), ("auvy", "j2"))
    s.cancel(("auvy", "j1"))
    s.cancel(("auvy", "j1"))  # nothing filed: nothing happens
    assert s.filed(("auvy", "j1")) is None
    assert s.run_due(10) == 1
    assert log == ["other"]


def test_a_key_taken_by_a_new_timer_leaves_the_old_one_due() -> None:
    # What the models' own tables did: filing over an entry does not cancel its timer.
    s = Scheduler()
    log: list[str] = []
    s.at(10, appender(log, "old"), ("auvy", "j1"))
    new = s.at(20, appender(log, "new"), ("auvy", "j1"))
    assert s.filed(("auvy", "j1")) is new
    s.run_due(15)
    assert log == ["old"]
    s.cancel(("auvy", "j1"))
    assert s.run_due(30) == 0 and log == ["old"]


def test_a_released_key_no_longer_cancels_its_timer() -> None:
    s = Scheduler()
    log: list[str] = []
    s.at(10, appender(log, "step"), ("strait", "r1", "step"))
    s.release(("strait", "r1", "step"))
    s.cancel(("strait", "r1", "step"))
    assert s.run_due(10) == 1 and log == ["step"]


def test_cancel_kind_cancels_one_models_timers_only() -> None:
    s = Scheduler()
    log: list[str] = []
    s.at(10, appender(log, "auvy"), ("auvy", "j1"))
    s.at(10, appender(log, "ava"), ("ava", "j1"))
    s.at(10, appender(log, "unkeyed"))
    s.cancel_kind("auvy")
    assert s.run_due(10) == 2
    assert log == ["ava", "unkeyed"]
