"""The AVA model on its own: no HTTP, a manual clock, a small world declared here."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mock_server.clock import ManualClock
from mock_server.model.ava import (
    CANCELLABLE,
    COMPLETED_EVENT,
    FAILED_EVENT,
    ROLES,
    TRANSITIONS,
    AvaModel,
    Caller,
    Job,
    JobStatus,
    Log,
    Settings,
    Tenant,
    Work,
    Worker,
    job_record,
    new_id,
    parse_worker_script,
)
from mock_server.model.engine import Engine
from mock_server.model.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from mock_server.model.script import Complete, Fail, ScriptError
from mock_server.profile import FIXTURES
from mock_server.seed import SeedError, load_ava

SECRET = "s3cret"
STEP_MS = 10
Q, R, C, F, X = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
# The lifecycle as FACTS.md states it, written out independently of the code.
EDGES: dict[JobStatus, set[JobStatus]] = {Q: {R, X}, R: {C, F, X}, C: set(), F: set(), X: set()}

SCRIPTS: dict[str, tuple[Any, ...]] = {
    "complete": (Log("info", "hello"), Work(2), Complete({"ok": True})),
    "fail": (Log("warn", "careful"), Work(1), Fail("it broke")),
    "long": (Work(100_000), Complete({})),
    "quick": (Work(1), Complete({"n": 1})),
    "instant": (Complete({"now": True}),),
    "chatty": (
        Log("info", "line {n}", 300),
        Log("warn", "warn {n}", 150),
        Log("error", "error {n}", 70),
        Complete({}),
    ),
    "empty": (),
}


def make_model(clock: ManualClock, *, max_concurrent: int = 2, start_delay_ms: int = 0) -> AvaModel:
    model = AvaModel(
        Engine(clock),
        Settings(step_ms=STEP_MS, start_delay_ms=start_delay_ms, max_concurrent=max_concurrent),
    )
    model.secret = SECRET
    model.add_tenant(Tenant("ten_a", "A"))
    model.add_tenant(Tenant("ten_b", "B"))
    model.add_tenant(Tenant("ten_one", "one at a time", max_concurrent=1))
    model.add_tenant(Tenant("ten_off", "suspended", suspended=True))
    for tenant in ("ten_a", "ten_b", "ten_one", "ten_off"):
        for name, script in SCRIPTS.items():
            model.add_worker(Worker(f"{tenant}_{name}", tenant, name, script))
    return model


def caller(model: AvaModel, tenant: str = "ten_a", role: str = "tenant-system-admin") -> Caller:
    return model.authenticate(SECRET, tenant, "usr_1", role)


def advance(model: AvaModel, ms: int) -> None:
    model.engine.clock.advance(ms)
    model.engine.run_due()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def model(clock: ManualClock) -> AvaModel:
    return make_model(clock)


# --- the table -------------------------------------------------------------------------------


def test_the_table_is_the_documented_lifecycle() -> None:
    assert set(TRANSITIONS.statuses()) == set(JobStatus)
    for status in JobStatus:
        assert TRANSITIONS.targets(status) == frozenset(EDGES[status]), status
    assert TRANSITIONS.terminal == frozenset({C, F, X})
    assert set(CANCELLABLE) == {Q, R}


@given(st.sampled_from(list(JobStatus)), st.sampled_from(list(JobStatus)))
def test_only_declared_moves_are_allowed(current: JobStatus, target: JobStatus) -> None:
    assert TRANSITIONS.allowed(current, target) is (target in EDGES[current])


def test_ids_look_like_the_documents_and_sort_by_time() -> None:
    first, second = new_id("job", 1_767_225_600_000), new_id("job", 1_767_225_600_001)
    assert first.startswith("job_01") and len(first) == len("job_") + 26
    assert first[4:].isalnum() and first[4:].islower()
    assert first < second


# --- triggering and running ------------------------------------------------------------------


def test_trigger_returns_a_queued_record_and_runs_later(model: AvaModel) -> None:
    who = caller(model)
    job = model.trigger(who, "ten_a_complete", input={"x": 1}, priority=2, trigger="event")
    assert job.status is Q and job.started_ms is None
    record = job_record(job)
    assert (record["priority"], record["trigger"], record["input"]) == (2, "event", {"x": 1})
    assert record["triggered_by"] == "usr_1" and record["tenant_id"] == "ten_a"
    model.engine.run_due()
    assert job.status is R and job.started_ms == job.created_ms
    advance(model, 2 * STEP_MS)
    assert job.status is C
    assert job.output == {"ok": True} and job.error is None
    assert job.completed_ms == job.created_ms + 2 * STEP_MS
    assert job.duration_ms == 2 * STEP_MS


def test_start_delay_and_failure(clock: ManualClock) -> None:
    model = make_model(clock, start_delay_ms=50)
    job = model.trigger(caller(model), "ten_a_fail")
    advance(model, 49)
    assert job.status is Q
    advance(model, 1)
    assert job.status is R and job.started_ms == job.created_ms + 50
    advance(model, STEP_MS)
    assert job.status is F and job.error == "it broke" and job.output is None
    assert job_record(job)["output"] is None and job_record(job)["error"] == "it broke"


def test_a_worker_may_have_its_own_pacing(model: AvaModel) -> None:
    model.add_worker(Worker("slow", "ten_a", "slow", (Work(2), Complete({})), step_ms=100))
    job = model.trigger(caller(model), "slow")
    advance(model, 199)
    assert job.status is R
    advance(model, 1)
    assert job.status is C and job.duration_ms == 200


def test_a_script_that_runs_out_completes_with_null_output(model: AvaModel) -> None:
    job = model.trigger(caller(model), "ten_a_empty")
    model.engine.run_due()
    assert job.status is C and job.output is None and job.duration_ms == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"priority": 0}, "priority"),
        ({"priority": 11}, "priority"),
        ({"priority": True}, "priority"),
        ({"trigger": "cron"}, "trigger"),
    ],
)
def test_the_model_holds_its_own_line_on_input(
    model: AvaModel, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        model.trigger(caller(model), "ten_a_complete", **kwargs)
    assert info.value.field == field
    assert list(model.jobs.values()) == []


@pytest.mark.parametrize("worker", ["nope", "ten_b_complete"])
def test_unknown_or_foreign_worker_is_not_found(model: AvaModel, worker: str) -> None:
    with pytest.raises(NotFound):
        model.trigger(caller(model), worker)


# --- the queue -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=25))
def test_a_saturated_queue_starts_by_priority_then_fifo(priorities: list[int]) -> None:
    model = make_model(ManualClock())
    who = caller(model, "ten_one")
    blocker = model.trigger(who, "ten_one_long")
    model.engine.run_due()
    assert blocker.status is R
    jobs = [model.trigger(who, "ten_one_quick", priority=p) for p in priorities]
    model.engine.run_due()
    assert all(j.status is Q for j in jobs)
    model.cancel(who, blocker.id)
    advance(model, STEP_MS * (len(jobs) + 1))
    assert all(j.status is C for j in jobs)
    started = sorted(jobs, key=lambda j: (j.started_ms or 0, j.seq))
    expected = sorted(jobs, key=lambda j: (j.priority, j.seq))
    assert [j.id for j in started] == [j.id for j in expected]
    assert len({j.started_ms for j in jobs}) == len(jobs), "one slot: starts never coincide"


def test_a_queued_job_competes_by_priority_before_its_start_delay_ends() -> None:
    """Queued is queued: a slot freed while the higher-priority job is still inside its start
    delay goes to it, not to a lower-priority job that was queued earlier."""
    model = make_model(ManualClock(), start_delay_ms=100)
    who = caller(model, "ten_one")
    blocker = model.trigger(who, "ten_one_long")
    advance(model, 100)
    assert blocker.status is R
    low = model.trigger(who, "ten_one_quick", priority=9)
    advance(model, 60)
    high = model.trigger(who, "ten_one_quick", priority=1)
    advance(model, 10)
    assert (low.status, high.status) == (Q, Q)
    model.cancel(who, blocker.id)
    advance(model, 0)
    assert (high.status, low.status) == (R, Q)


def test_concurrency_is_per_tenant(clock: ManualClock) -> None:
    model = make_model(clock, max_concurrent=2)
    a, b = caller(model, "ten_a"), caller(model, "ten_b")
    longs = [model.trigger(a, "ten_a_long") for _ in range(3)]
    other = model.trigger(b, "ten_b_long")
    model.engine.run_due()
    assert [j.status for j in longs] == [R, R, Q]
    assert other.status is R, "another tenant's slots are its own"
    model.cancel(a, longs[0].id)
    assert longs[2].status is R, "a freed slot is taken at once"
    assert model.running("ten_a") == frozenset({longs[1].id, longs[2].id})


def test_scheduled_at_holds_the_job_until_then(model: AvaModel) -> None:
    now = model.engine.now()
    job = model.trigger(caller(model), "ten_a_quick", scheduled_ms=now + 1_000)
    assert job_record(job)["scheduled_at"] is not None
    advance(model, 999)
    assert job.status is Q and job.started_ms is None
    advance(model, 1)
    assert job.status is R and job.started_ms == now + 1_000


def test_a_past_scheduled_at_queues_at_once(model: AvaModel) -> None:
    job = model.trigger(caller(model), "ten_a_quick", scheduled_ms=model.engine.now() - 5_000)
    model.engine.run_due()
    assert job.status is R


def test_fifo_is_by_eligibility_for_scheduled_jobs(model: AvaModel) -> None:
    who = caller(model, "ten_one")
    blocker = model.trigger(who, "ten_one_long")
    model.engine.run_due()
    early = model.trigger(who, "ten_one_quick", scheduled_ms=model.engine.now() + 100)
    advance(model, 10)
    late = model.trigger(who, "ten_one_quick")
    advance(model, 200)
    model.cancel(who, blocker.id)
    assert late.status is R and early.status is Q, "late became eligible first"


def test_instant_workers_do_not_recurse(clock: ManualClock) -> None:
    model = make_model(clock)
    who = caller(model, "ten_one")
    jobs = [model.trigger(who, "ten_one_instant") for _ in range(2_000)]
    model.engine.run_due()
    assert all(j.status is C for j in jobs)


# --- cancel from every status ----------------------------------------------------------------


def job_in(model: AvaModel, status: JobStatus) -> Job:
    who = caller(model)
    if status is Q:
        return model.trigger(who, "ten_a_quick", scheduled_ms=model.engine.now() + 60_000)
    if status is X:
        job = model.trigger(who, "ten_a_quick", scheduled_ms=model.engine.now() + 60_000)
        model.cancel(who, job.id)
        return job
    worker = {R: "ten_a_long", C: "ten_a_quick", F: "ten_a_fail"}[status]
    job = model.trigger(who, worker)
    advance(model, 5 * STEP_MS)
    assert job.status is status
    return job


@pytest.mark.parametrize("status", list(JobStatus))
def test_cancel_from_every_status(model: AvaModel, status: JobStatus) -> None:
    job = job_in(model, status)
    before = (job_record(job), list(model.logs.get(job.id) or []))
    if status in (Q, R):
        model.cancel(caller(model), job.id)
        assert job.status is X and job.completed_ms == model.engine.now()
        assert (job.started_ms is None) is (status is Q)
        levels = [line.level for line in model.logs.get(job.id) or []]
        assert "warn" in levels
        advance(model, 1_000_000)
        assert job.status is X, "a cancelled job came back"
    else:
        with pytest.raises(IllegalTransition) as info:
            model.cancel(caller(model), job.id)
        assert info.value.current == status.value
        assert (job_record(job), list(model.logs.get(job.id) or [])) == before


def test_cancelling_a_running_job_sends_sigterm_and_frees_its_slot(clock: ManualClock) -> None:
    model = make_model(clock)
    who = caller(model, "ten_one")
    running = model.trigger(who, "ten_one_long")
    waiting = model.trigger(who, "ten_one_quick")
    model.engine.run_due()
    model.cancel(who, running.id)
    messages = [line.msg for line in model.logs.get(running.id) or []]
    assert any("SIGTERM" in m for m in messages)
    assert running.duration_ms == 0 and waiting.status is R


# --- callers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((None, "ten_a", "u", "tenant-viewer"), Unauthenticated),
        (("wrong", "ten_a", "u", "tenant-viewer"), Unauthenticated),
        (("sécret", "ten_a", "u", "tenant-viewer"), Unauthenticated),
        ((SECRET, None, "u", "tenant-viewer"), Unauthenticated),
        ((SECRET, "ten_zzz", "u", "tenant-viewer"), Unauthenticated),
        ((SECRET, "ten_a", "", "tenant-viewer"), Unauthenticated),
        ((SECRET, "ten_a", "u", None), Forbidden),
        ((SECRET, "ten_a", "u", "root"), Forbidden),
    ],
)
def test_authenticate_refuses(
    model: AvaModel, args: tuple[str | None, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        model.authenticate(*args)


def test_a_model_without_a_secret_lets_nobody_in(clock: ManualClock) -> None:
    model = AvaModel(Engine(clock))
    with pytest.raises(Unauthenticated):
        model.authenticate("", "ten_a", "u", "tenant-viewer")


@pytest.mark.parametrize("role", ROLES)
def test_writes_need_tenant_system_admin_or_higher(model: AvaModel, role: str) -> None:
    who = caller(model, role=role)
    parked = model.trigger(caller(model), "ten_a_quick", scheduled_ms=model.engine.now() + 9_999)
    may_write = ROLES.index(role) >= ROLES.index("tenant-system-admin")
    if may_write:
        model.trigger(who, "ten_a_quick")
        model.cancel(who, parked.id)
    else:
        with pytest.raises(Forbidden):
            model.trigger(who, "ten_a_quick")
        with pytest.raises(Forbidden):
            model.cancel(who, parked.id)
        assert parked.status is Q
    assert model.get_job(who, parked.id) is parked
    model.job_logs(who, parked.id)
    assert parked in model.list_jobs(who)


def test_a_suspended_tenant_reads_but_cannot_write(model: AvaModel) -> None:
    who = caller(model, "ten_off")
    with pytest.raises(Forbidden) as info:
        model.trigger(who, "ten_off_quick")
    assert info.value.reason == "tenant_suspended"
    assert model.list_jobs(who) == []


def test_another_tenants_job_is_not_found(model: AvaModel) -> None:
    job = model.trigger(caller(model, "ten_a"), "ten_a_long")
    other = caller(model, "ten_b")
    for read in (model.get_job, model.job_logs, model.cancel):
        with pytest.raises(NotFound):
            read(other, job.id)
    assert model.list_jobs(other) == []
    assert job.status is Q


# --- lists and logs --------------------------------------------------------------------------


def test_list_filters_and_inclusive_bounds(model: AvaModel) -> None:
    who = caller(model)
    first = model.trigger(who, "ten_a_quick", trigger="webhook")
    advance(model, 5)
    second = model.trigger(who, "ten_a_fail", trigger="event")
    third = model.trigger(who, "ten_a_quick", trigger="webhook")
    advance(model, 100)
    assert model.list_jobs(who) == [third, second, first], "newest first, ties by order"
    assert model.list_jobs(who, worker_id="ten_a_quick") == [third, first]
    assert model.list_jobs(who, status=F) == [second]
    assert model.list_jobs(who, trigger="webhook") == [third, first]
    at = second.created_ms
    assert model.list_jobs(who, created_after_ms=at) == [third, second]
    assert model.list_jobs(who, created_before_ms=at - 1) == [first]
    assert model.list_jobs(who, created_before_ms=at) == [third, second, first]
    combined = model.list_jobs(
        who, worker_id="ten_a_quick", status=C, trigger="webhook", created_after_ms=at
    )
    assert combined == [third]
    assert model.list_jobs(who, created_after_ms=at + 1, created_before_ms=at - 1) == []


def test_logs_filter_and_limit(model: AvaModel) -> None:
    who = caller(model)
    job = model.trigger(who, "ten_a_chatty")
    model.engine.run_due()
    _, lines = model.job_logs(who, job.id, limit=500)
    assert len(lines) == 500 and lines[0].msg == "Worker handler started"
    assert len(model.job_logs(who, job.id)[1]) == 100
    for level, count in (("info", 300 + 2), ("warn", 150), ("error", 70)):
        _, found = model.job_logs(who, job.id, level=level, limit=500)
        assert len(found) == count and {ln.level for ln in found} == {level}
    assert model.job_logs(who, job.id, level="warn", limit=3)[1][2].msg == "warn 3"
    for limit in (0, 501):
        with pytest.raises(InvalidInput):
            model.job_logs(who, job.id, limit=limit)


def test_a_queued_job_has_no_log_lines(model: AvaModel) -> None:
    who = caller(model)
    job = model.trigger(who, "ten_a_quick")
    assert model.job_logs(who, job.id)[1] == []


# --- webhooks and control --------------------------------------------------------------------


def test_completed_and_failed_are_published_cancelled_is_not(model: AvaModel) -> None:
    model.outbox.subscribe("http://hooks.test/a", "k")
    who = caller(model)
    done = model.trigger(who, "ten_a_quick")
    broken = model.trigger(who, "ten_a_fail")
    dropped = model.trigger(who, "ten_a_long")
    model.engine.run_due()
    model.cancel(who, dropped.id)
    advance(model, 100)
    events = {d.subject: d.event_type for d in model.outbox.deliveries()}
    assert events == {done.id: COMPLETED_EVENT, broken.id: FAILED_EVENT}


@pytest.mark.parametrize(("start", "outcome"), [(Q, "complete"), (R, "fail"), (R, "complete")])
def test_force_ends_a_live_job(model: AvaModel, start: JobStatus, outcome: str) -> None:
    job = job_in(model, start)
    model.force(job.id, outcome, "told to")
    assert job.status is (C if outcome == "complete" else F)
    assert job.started_ms is not None and job.duration_ms is not None
    if outcome == "fail":
        assert job.error == "told to"
    with pytest.raises(IllegalTransition):
        model.force(job.id, outcome)


def test_force_refuses_unknown_jobs_and_outcomes(model: AvaModel) -> None:
    with pytest.raises(NotFound):
        model.force("job_x", "complete")
    job = job_in(model, Q)
    with pytest.raises(InvalidInput):
        model.force(job.id, "explode")


def test_reset_drops_jobs_and_timers(model: AvaModel) -> None:
    who = caller(model)
    job = model.trigger(who, "ten_a_long")
    model.engine.run_due()
    model.reset_jobs()
    assert list(model.jobs.values()) == []
    advance(model, 10_000_000)
    assert job.status is R, "a timer of a dropped job still ran"
    model.clear_world()
    with pytest.raises(Unauthenticated):
        model.authenticate(SECRET, "ten_a", "u", "tenant-viewer")


# --- seed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nope", "must be a list"),
        (["x"], "must be a table"),
        ([{"log": "debug", "msg": "x"}], "log must be one of"),
        ([{"log": "info"}], "needs a msg"),
        ([{"log": "info", "msg": "x", "repeat": 0}], "repeat"),
        ([{"work": -1}], "work must be"),
        ([{"work": True}], "work must be"),
        ([{"complete": 3}], "complete takes a table"),
        ([{"dance": 1}], "unknown step"),
    ],
)
def test_bad_worker_scripts_name_the_step(raw: Any, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_worker_script(raw, "worker w")


def test_the_bundled_seed_loads(clock: ManualClock) -> None:
    model = AvaModel(Engine(clock))
    load_ava(model, FIXTURES / "seed" / "ava.toml")
    assert model.tenants["ten_queue"].max_concurrent == 1
    assert model.tenants["ten_initech"].suspended
    assert model.secret
    logs_worker = model.workers["wkr_acme_logs"]
    written = sum(s.repeat for s in logs_worker.script if isinstance(s, Log))
    assert written > 500


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[tenants]]\nid = 'a'\n", "internal_secret"),
        ("[auth]\ninternal_secret = 's'\n[[tenants]]\nname = 'x'\n", "lacks the key"),
        (
            "[auth]\ninternal_secret = 's'\n[[workers]]\nid = 'w'\ntenant = 'zz'\n",
            "unknown tenant",
        ),
        (
            "[auth]\ninternal_secret = 's'\n[[tenants]]\nid = 't'\nmax_concurrent = 0\n",
            "max_concurrent",
        ),
        (
            "[auth]\ninternal_secret = 's'\n[[tenants]]\nid = 't'\n"
            "[[workers]]\nid = 'w'\ntenant = 't'\nscript = [{ work = 'x' }]\n",
            "work must be",
        ),
        (
            "[auth]\ninternal_secret = 's'\n[[tenants]]\nid = 't'\n"
            "[[workers]]\nid = 'w'\ntenant = 't'\nstep_ms = -1\n",
            "step_ms",
        ),
        ("not toml [", "cannot read"),
    ],
)
def test_bad_seed_worlds_fail_at_start_up(
    tmp_path: Any, clock: ManualClock, text: str, message: str
) -> None:
    path = tmp_path / "ava.toml"
    path.write_text(text)
    with pytest.raises(SeedError, match=message):
        load_ava(AvaModel(Engine(clock)), path)


# --- a state machine over the whole model ----------------------------------------------------


class AvaMachine(RuleBasedStateMachine):
    """Random triggers, cancels, forced outcomes and clock moves; the invariants are the
    lifecycle table, the concurrency bound, a work-conserving queue and consistent times."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.model = make_model(self.clock, max_concurrent=2, start_delay_ms=5)
        self.who = caller(self.model, "ten_a")
        self.jobs: list[Job] = []
        self.seen: dict[str, JobStatus] = {}
        self.due: dict[str, int] = {}
        self.earliest: dict[str, int] = {}

    @rule(
        worker=st.sampled_from(["quick", "complete", "fail", "long", "chatty", "instant"]),
        priority=st.integers(1, 10),
        delay=st.one_of(st.none(), st.integers(-50, 300)),
    )
    def trigger(self, worker: str, priority: int, delay: int | None) -> None:
        now = self.model.engine.now()
        scheduled = None if delay is None else now + delay
        job = self.model.trigger(
            self.who, f"ten_a_{worker}", priority=priority, scheduled_ms=scheduled
        )
        self.jobs.append(job)
        self.seen[job.id] = job.status
        self.due[job.id] = max(now + 5, scheduled if scheduled is not None else now)
        # An unscheduled job competes for a slot from the moment it is queued (a slot freed by
        # another job may take it at once); the start delay only bounds how long a free slot waits.
        self.earliest[job.id] = scheduled if scheduled is not None and scheduled > now else now

    @rule(ms=st.integers(0, 60))
    def tick(self, ms: int) -> None:
        advance(self.model, ms)

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.jobs))
        before = job_record(job)
        if job.status in CANCELLABLE:
            self.model.cancel(self.who, job.id)
            assert job.status is X
        else:
            with pytest.raises(IllegalTransition):
                self.model.cancel(self.who, job.id)
            assert job_record(job) == before

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data(), outcome=st.sampled_from(["complete", "fail"]))
    def force(self, data: st.DataObject, outcome: str) -> None:
        job = data.draw(st.sampled_from(self.jobs))
        if job.terminal:
            with pytest.raises(IllegalTransition):
                self.model.force(job.id, outcome)
        else:
            self.model.force(job.id, outcome)

    @invariant()
    def moves_follow_the_table(self) -> None:
        for job in self.jobs:
            before = self.seen[job.id]
            if job.status is not before:
                # A step may pass through running (queued -> running -> completed).
                assert TRANSITIONS.allowed(before, job.status) or (
                    before is Q and TRANSITIONS.allowed(R, job.status)
                ), (before, job.status)
            self.seen[job.id] = job.status

    @invariant()
    def at_most_max_concurrent_run(self) -> None:
        running = [j for j in self.jobs if j.status is R]
        assert len(running) <= 2
        assert self.model.running("ten_a") == frozenset(j.id for j in running)

    @invariant()
    def a_free_slot_never_idles_while_an_eligible_job_waits(self) -> None:
        now = self.model.engine.now()
        running = sum(1 for j in self.jobs if j.status is R)
        waiting = [j for j in self.jobs if j.status is Q and self.due[j.id] <= now]
        assert running == 2 or not waiting, (running, [j.id for j in waiting])

    @invariant()
    def times_are_consistent(self) -> None:
        for job in self.jobs:
            record = job_record(job)
            if job.status is Q:
                assert job.started_ms is None and job.completed_ms is None
            if job.started_ms is not None:
                assert job.started_ms >= self.earliest[job.id] or job.status in (C, F)
            if job.terminal:
                assert job.completed_ms is not None
                if job.started_ms is not None:
                    assert record["duration_ms"] == job.completed_ms - job.started_ms
            assert (record["output"] is not None) <= (job.status is C)
            assert (record["error"] is not None) is (job.status is F)
            stamps = [line.ts_ms for line in self.model.logs.get(job.id) or []]
            assert stamps == sorted(stamps)


TestAvaMachine = AvaMachine.TestCase
TestAvaMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
