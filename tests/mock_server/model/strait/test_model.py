"""The Strait model on a manual clock: the transition table, retries and dead-lettering, the
control actions' refusals, pagination, and a state machine that walks every run action."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mock_server.clock import ManualClock
from mock_server.model.engine import Engine
from mock_server.model.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from mock_server.model.strait import (
    CANCELLABLE,
    REPLAYABLE,
    TERMINAL,
    TRANSITIONS,
    ApiKey,
    Behaviour,
    Job,
    Project,
    Run,
    RunStatus,
    Settings,
    StraitModel,
    TriggerOptions,
    contains,
    run_record,
    uuid7,
    wire_status,
)

S = RunStatus
STEP, SECOND = 10, 100
KEY = ApiKey("key_a", "strait_" + "a" * 64, "proj_a")
OTHER = ApiKey("key_b", "strait_" + "b" * 64, "proj_b")


def world(**jobs: dict[str, Any]) -> tuple[StraitModel, ManualClock]:
    clock = ManualClock()
    model = StraitModel(Engine(clock), Settings(step_ms=STEP, start_delay_ms=5, second_ms=SECOND))
    model.add_project(Project("proj_a", "a"))
    model.add_project(Project("proj_b", "b"))
    model.add_key(KEY)
    model.add_key(OTHER)
    for job_id, config in jobs.items():
        model.add_job(Job(job_id, config.pop("project", "proj_a"), job_id, **config))
    return model, clock


def advance(model: StraitModel, clock: ManualClock, ms: int) -> None:
    for _ in range(ms // STEP):
        clock.advance(STEP)
        model.engine.run_due()


def status(run: Run) -> RunStatus:
    """Read through a call, so a type checker does not narrow a status that time changes."""
    return run.status


def seen(model: StraitModel, run_id: str) -> list[str]:
    """Every status the run's stream reported, starting with the one it was created in."""
    result = model.read_stream(run_id, None)
    changes = [e.data for e in result.entries if e.data["type"] == "status_change"]
    return [str(changes[0]["from"])] + [str(c["to"]) for c in changes] if changes else []


# --- the table ---------------------------------------------------------------------------------


def test_the_table_is_facts_table() -> None:
    assert TRANSITIONS.targets(S.DELAYED) == {S.QUEUED, S.CANCELED, S.EXPIRED}
    assert TRANSITIONS.targets(S.DEAD_LETTER) == {S.QUEUED}
    assert S.DEAD_LETTER in TRANSITIONS.targets(S.EXECUTING)
    assert {
        S.COMPLETED,
        S.FAILED,
        S.TIMED_OUT,
        S.CRASHED,
        S.SYSTEM_FAILED,
        S.CANCELED,
        S.EXPIRED,
        S.DEAD_LETTER,
    } == TERMINAL
    assert REPLAYABLE <= TERMINAL and not CANCELLABLE & TERMINAL
    assert wire_status(S.PAUSED) == "waiting"


def test_uuid7_is_version_7_and_time_ordered() -> None:
    a, b = uuid7(1_000), uuid7(2_000)
    assert a[14] == "7" and a[19] in "89ab" and a < b


@pytest.mark.parametrize(
    ("whole", "part", "expected"),
    [
        ({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [2]}}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]}, True),
        ({"a": True}, {"a": 1}, False),
        ({"a": 1}, {}, True),
        ({}, {"a": None}, False),
    ],
)
def test_containment_is_jsonb_like(whole: Any, part: Any, expected: bool) -> None:
    assert contains(whole, part) is expected


# --- lifecycles on a manual clock -----------------------------------------------------------------


def test_a_complete_run_and_its_records() -> None:
    model, clock = world(j={"ticks": 2})
    run, hit = model.trigger(KEY, "j", TriggerOptions(payload={"a": 1}))
    assert not hit and status(run) is S.QUEUED
    advance(model, clock, 200)
    assert status(run) is S.COMPLETED and run.result == {"ok": True, "attempt": 1}
    assert seen(model, run.id) == ["queued", "dequeued", "executing", "completed"]
    records = model.records[run.id]
    assert records.checkpoints and records.usage and records.tool_calls and records.outputs
    record = run_record(run, model.jobs["j"])
    assert run.finished_ms is not None
    assert record["execution_trace"]["total_ms"] == run.finished_ms - run.created_ms


def test_retries_follow_exponential_backoff_then_dead_letter() -> None:
    model, clock = world(
        j={
            "behaviour": Behaviour.FAIL,
            "fail_attempts": 99,
            "max_attempts": 3,
            "retry_initial_delay_secs": 1,
            "retry_max_delay_secs": 1,
            "ticks": 1,
        }
    )
    start = clock.now_ms()
    run, _ = model.trigger(KEY, "j", TriggerOptions())
    # Dequeued at +5, executing at +15, the one tick fails at +25.
    advance(model, clock, 20)
    assert status(run) is S.EXECUTING
    advance(model, clock, 10)
    assert status(run) is S.QUEUED and run.attempt == 2
    assert run.next_retry_ms == start + 25 + SECOND
    advance(model, clock, SECOND - 20)
    assert status(run) is S.QUEUED
    advance(model, clock, 1_000)
    assert status(run) is S.DEAD_LETTER and run.attempt == 3 and run.next_retry_ms is None
    assert model.dead_letters(KEY, "proj_a") == [run]


def test_the_latest_status_change_is_tracked_across_a_dlq_replay() -> None:
    """A stream ends at a terminal change only if it is the latest: after a dlq-replay the first
    dead_letter is history, and a reader must follow the run's second life."""
    model, clock = world(j={"behaviour": Behaviour.FAIL, "fail_attempts": 99, "max_attempts": 1})
    run, _ = model.trigger(KEY, "j", TriggerOptions())
    advance(model, clock, 1_000)
    entries = model.read_stream(run.id, None).entries
    first_end = next(e for e in entries if e.data.get("to") == "dead_letter")
    assert run.last_change == first_end.id
    model.dlq_replay(KEY, run.id)
    latest = model.read_stream(run.id, first_end.id).entries
    assert run.last_change == latest[-1].id and latest[-1].data["to"] == "queued"
    advance(model, clock, 1_000)
    assert status(run) is S.DEAD_LETTER and run.last_change not in (None, first_end.id)
    chunks = model.read_chunks(run.id, None).entries
    assert run.last_chunk == chunks[-1].id and chunks[-1].data["done"] is True


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [("fixed", [2, 2, 2, 2]), ("exponential", [2, 4, 8, 10])],
)
def test_backoff_delays(backoff: str, expected: list[int]) -> None:
    job = Job("j", "p", "j", retry_backoff=backoff, retry_initial_delay_secs=2,
              retry_max_delay_secs=10)  # fmt: skip
    assert [job.backoff_secs(a) for a in (1, 2, 3, 4)] == expected


def test_fail_then_succeed_completes_on_a_later_attempt() -> None:
    model, clock = world(j={"behaviour": Behaviour.FAIL, "fail_attempts": 1, "ticks": 1})
    run, _ = model.trigger(KEY, "j", TriggerOptions())
    advance(model, clock, 2_000)
    assert status(run) is S.COMPLETED and run.attempt == 2
    assert "queued" in seen(model, run.id)[2:]


@pytest.mark.parametrize(
    ("behaviour", "config", "final"),
    [
        (Behaviour.FATAL, {}, S.FAILED),
        (Behaviour.CRASH, {}, S.CRASHED),
        (Behaviour.SYSTEM_FAIL, {}, S.SYSTEM_FAILED),
        (Behaviour.LONG, {"timeout_secs": 1}, S.TIMED_OUT),
        (Behaviour.WAIT, {}, S.COMPLETED),
    ],
)
def test_outcomes(behaviour: Behaviour, config: dict[str, Any], final: RunStatus) -> None:
    model, clock = world(j={"behaviour": behaviour, **config})
    run, _ = model.trigger(KEY, "j", TriggerOptions())
    advance(model, clock, 2_000)
    assert run.status is final
    if behaviour is Behaviour.WAIT:
        assert "waiting" in seen(model, run.id)


def test_delayed_then_queued_at_scheduled_at_and_expiry() -> None:
    model, clock = world(j={})
    now = clock.now_ms()
    run, _ = model.trigger(KEY, "j", TriggerOptions(scheduled_ms=now + 500))
    late, _ = model.trigger(KEY, "j", TriggerOptions(scheduled_ms=now + 500, expires_ms=now + 200))
    assert status(run) is S.DELAYED
    advance(model, clock, 490)
    assert status(run) is S.DELAYED and status(late) is S.EXPIRED
    advance(model, clock, 10)
    assert status(run) is S.QUEUED


def test_children_are_canceled_with_their_parent() -> None:
    model, clock = world(
        kid={"behaviour": Behaviour.LONG},
        parent={"behaviour": Behaviour.SPAWN, "spawn_job": "kid", "spawn_count": 2},
    )
    parent, _ = model.trigger(KEY, "parent", TriggerOptions())
    advance(model, clock, 200)
    kids = model.children(KEY, parent.id)
    assert status(parent) is S.WAITING and len(kids) == 2
    model.cancel(KEY, parent.id)
    assert {k.status for k in kids} == {S.CANCELED}


def test_continuations_form_a_lineage() -> None:
    model, clock = world(j={"behaviour": Behaviour.CONTINUE, "continue_depth": 2, "ticks": 1})
    first, _ = model.trigger(KEY, "j", TriggerOptions())
    advance(model, clock, 1_000)
    chain = model.lineage(KEY, first.id)
    assert [r.lineage_depth for r in chain] == [0, 1, 2]
    assert model.lineage(KEY, chain[2].id) == chain


def test_refusals_change_nothing() -> None:
    model, clock = world(j={"ticks": 1}, long={"behaviour": Behaviour.LONG})
    run, _ = model.trigger(KEY, "j", TriggerOptions())
    advance(model, clock, 500)
    before = run_record(run, None)
    with pytest.raises(IllegalTransition, match="terminal"):
        model.cancel(KEY, run.id)
    with pytest.raises(IllegalTransition):
        model.replay(KEY, run.id)
    for action in (model.dlq_replay, model.pause, model.resume, model.restart):
        with pytest.raises(Conflict):
            action(KEY, run.id)
    with pytest.raises(Conflict):
        model.reschedule(KEY, run.id, clock.now_ms())
    with pytest.raises(NotFound):
        model.get_run(OTHER, run.id)
    assert run_record(run, None) == before
    live, _ = model.trigger(KEY, "long", TriggerOptions())
    with pytest.raises(InvalidInput):
        model.bulk_replay(KEY, [live.id])
    assert status(live) is S.QUEUED


def test_reschedule_moves_queued_back_to_delayed() -> None:
    model, clock = world(j={})
    run, _ = model.trigger(KEY, "j", TriggerOptions())
    model.reschedule(KEY, run.id, clock.now_ms() + 1_000)
    assert status(run) is S.DELAYED
    advance(model, clock, 990)
    assert status(run) is S.DELAYED
    advance(model, clock, 10)
    assert status(run) is S.QUEUED
    assert seen(model, run.id) == ["queued", "delayed", "queued"]


def test_idempotency_hits_only_while_live() -> None:
    model, clock = world(j={"ticks": 1})
    opts = TriggerOptions(idempotency_key="k")
    first, _ = model.trigger(KEY, "j", opts)
    again, hit = model.trigger(KEY, "j", opts)
    assert hit and again is first
    advance(model, clock, 500)
    third, hit = model.trigger(KEY, "j", opts)
    assert not hit and third is not first


# --- pagination ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=6),
    limit=st.integers(min_value=1, max_value=5),
)
def test_cursor_pages_have_no_duplicates_and_no_gaps(batches: list[int], limit: int) -> None:
    """Runs created between page reads (several in one millisecond) never shift the pages."""
    model, clock = world(j={"behaviour": Behaviour.LONG})
    made = [model.trigger(KEY, "j", TriggerOptions(batch_id="b"))[0].id for _ in range(6)]
    expected = list(reversed(made))
    pages: list[str] = []
    cursor: int | None = None
    for extra in batches + [0] * 20:
        page = model.list_runs(KEY, "proj_a", batch_id="b", limit=limit, cursor_ms=cursor)
        pages += [r.id for r in page]
        if len(page) < limit:
            break
        cursor = page[-1].created_ms
        for _ in range(extra):
            model.trigger(KEY, "j", TriggerOptions(batch_id="b"))
        clock.advance(extra % 2)
    assert pages == expected


def test_limit_is_capped_and_must_be_positive() -> None:
    model, _ = world(j={"behaviour": Behaviour.LONG})
    for _ in range(105):
        model.trigger(KEY, "j", TriggerOptions())
    assert len(model.list_runs(KEY, "proj_a", limit=500)) == 100
    assert len(model.list_runs(KEY, "proj_a")) == 50
    with pytest.raises(InvalidInput):
        model.list_runs(KEY, "proj_a", limit=0)


# --- every action, in any order ------------------------------------------------------------


class RunMachine(RuleBasedStateMachine):
    """Random triggers, actions and clock steps: every status change the stream reports is an
    edge of the table, refusals leave runs alone, and terminal runs stay terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.model, self.clock = world(
            ok={"ticks": 2},
            flaky={"behaviour": Behaviour.FAIL, "fail_attempts": 1, "max_attempts": 2},
            dead={"behaviour": Behaviour.FAIL, "fail_attempts": 9, "max_attempts": 2},
            long={"behaviour": Behaviour.LONG, "timeout_secs": 3},
            wait={"behaviour": Behaviour.WAIT},
            crash={"behaviour": Behaviour.CRASH},
        )
        self.ids: list[str] = []

    @rule(
        job=st.sampled_from(["ok", "flaky", "dead", "long", "wait", "crash"]), delay=st.booleans()
    )
    def trigger(self, job: str, delay: bool) -> None:
        scheduled = self.clock.now_ms() + 50 if delay else None
        run, _ = self.model.trigger(KEY, job, TriggerOptions(scheduled_ms=scheduled))
        self.ids.append(run.id)

    @rule(ms=st.integers(min_value=1, max_value=300))
    def tick(self, ms: int) -> None:
        self.clock.advance(ms)
        self.model.engine.run_due()

    @precondition(lambda self: bool(self.ids))
    @rule(
        index=st.integers(min_value=0),
        action=st.sampled_from(
            ["cancel", "replay", "dlq_replay", "pause", "resume", "restart", "reschedule"]
        ),
    )
    def act(self, index: int, action: str) -> None:
        run = self.model.runs[self.ids[index % len(self.ids)]]
        before = (run.status, run.attempt)
        args: tuple[Any, ...] = (KEY, run.id)
        if action == "reschedule":
            args += (self.clock.now_ms() + 20,)
        try:
            result = getattr(self.model, action)(*args)
        except (IllegalTransition, Conflict):
            assert (run.status, run.attempt) == before
            return
        if action == "replay":
            self.ids.append(result.id)
            assert before[0] in REPLAYABLE
        if action == "cancel":
            assert status(run) is S.CANCELED

    @invariant()
    def every_reported_change_is_an_edge(self) -> None:
        for run_id in self.ids:
            for entry in self.model.read_stream(run_id, None).entries:
                if entry.data["type"] != "status_change":
                    continue
                source, target = str(entry.data["from"]), str(entry.data["to"])
                wire = {
                    (wire_status(a), wire_status(b))
                    for a in TRANSITIONS.statuses()
                    for b in TRANSITIONS.targets(a)
                }
                assert (source, target) in wire, (source, target)


TestRunMachine = RunMachine.TestCase
TestRunMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
