"""Models of each API's job lifecycle, kept without the server, and state machines that drive the
target with hypothesis and check after every step that it agrees with the model.

The model knows only what the documents (and FACTS.md) say: which status each fixture settles in,
which operations each status allows, and the error an operation gets when its status does not
allow it. Where they leave an outcome open (what a resumed job ends as, whether resuming a running
job is refused), the model accepts every allowed answer and then follows the target's choice;
`Context.reference` makes it demand the reference server's own choice instead, for the separate
`*-reference` decision tests. Jobs move on the server's own clock, so every rule waits until its
job settles (a terminal status, or the status the fixture parks in) before the model records it;
what is compared is then never a race with the server's pacing, and no transient status (queued,
dequeued, pending) ever has to be observed: every documented path to the settled status passes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from ..checks import (
    ConformanceFailure,
    auvy_error_envelope,
    ava_error_envelope,
    body_of,
    event_ids_strictly_increase,
    strait_error_envelope,
)
from ..clients.auvy import AuvyClient
from ..clients.ava import AvaClient
from ..clients.http import Recorder
from ..clients.strait import StraitClient
from ..report import Exchange
from .repro import Step, render_failure

__all__ = [
    "AUVY_SETTLES",
    "FullRecorder",
    "LifecycleMachine",
    "auvy_machine",
    "auvy_refusal",
    "ava_machine",
    "intervention_of",
    "strait_machine",
]


class FullRecorder(Recorder):
    """Keeps every exchange: a shrunk sequence is short, but all of it must be shown."""

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


@dataclass
class Context:
    """What a machine class needs from the run; set on the class before hypothesis runs it."""

    requirement: str
    nodeid: str
    seed: int  # the run's --seed, which replays this test
    depth: str
    recorder: FullRecorder
    settle_s: float
    fixtures: Mapping[str, str]  # fixture kind -> id (pathway, worker or job)
    # Demand the reference server's choices where the documents leave one open (decision tests).
    reference: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class LifecycleMachine(RuleBasedStateMachine):
    ctx: ClassVar[Context]
    noun: ClassVar[str] = "job"
    terminal: ClassVar[Collection[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[Step] = []
        self.expected: dict[str, str] = {}  # job id -> the status the model says it has
        self.ctx.recorder.exchanges.clear()

    def sent(self, label: str) -> None:
        """Log the step with the request it just made (the last exchange recorded)."""
        exchanges = self.ctx.recorder.exchanges
        self.steps.append(Step(label, exchanges[-1] if exchanges else None))

    def fail(self, claim: str) -> None:
        raise ConformanceFailure(
            render_failure(
                claim,
                [self.ctx.requirement],
                self.steps,
                seed=self.ctx.seed,
                nodeid=self.ctx.nodeid,
                depth=self.ctx.depth,
            )
        )

    @invariant()
    def status_agrees(self) -> None:
        for ident, expected in self.expected.items():
            status = self.status_of(ident)
            if status != expected:
                self.sent(f"poll {_short(ident)}")
                self.fail(f"{self.noun} {ident} is {status!r}; the model says {expected!r}")

    def teardown(self) -> None:
        # Leave nothing running on the target: long fixtures would hold its concurrency slots.
        for ident, status in self.expected.items():
            if status not in self.terminal:
                self.cancel_live(ident)

    def status_of(self, ident: str) -> str:
        raise NotImplementedError

    def cancel_live(self, ident: str) -> None:
        raise NotImplementedError

    def agree(self, label: str, check: Callable[[], Any]) -> Any:
        """Run a check of the target against the model; a mismatch fails with the sequence."""
        try:
            return check()
        except ConformanceFailure as exc:
            self.fail(f"after {label}: {exc}")
        return None


def _short(job_id: str) -> str:
    return job_id[-8:]


# --- AUVY -----------------------------------------------------------------------------------------

TERMINAL = frozenset({"completed", "failed"})
# Where each pathway fixture parks: terminal, or waiting for the caller.
AUVY_SETTLES: Mapping[str, str] = {
    "complete": "completed",
    "fail": "failed",
    "approval": "waiting",
    "pause": "paused",
    "long": "running",
}
# The statuses of the documented error table a refusal of an operation the job's status does not
# allow may carry, with their codes (401 and 429 are about the caller, not the job).
AUVY_REFUSALS: Mapping[int, frozenset[str]] = {
    400: frozenset({"VALIDATION_ERROR"}),
    403: frozenset({"FORBIDDEN"}),
    404: frozenset({"NOT_FOUND", "RESOURCE_NOT_FOUND"}),
}


def auvy_refusal(response: httpx.Response) -> None:
    """A refusal with a status and code of the documented error table."""
    codes = AUVY_REFUSALS.get(response.status_code)
    if codes is None:
        raise ConformanceFailure(
            f"expected a refusal of the error table ({', '.join(map(str, AUVY_REFUSALS))}), "
            f"got {response.status_code}",
            response.text[:300],
        )
    auvy_error_envelope(response, response.status_code, codes)


def intervention_of(client: AuvyClient, job_id: str, snap: Mapping[str, Any]) -> str:
    """The pending intervention a waiting job asks about. The shape of `waitingFor` is not
    published (FACTS.md), so where it names no `interventionId` (the reference's shape) the
    documented `GET /v1/interventions?job_id=` listing is asked instead."""
    waiting = snap.get("waitingFor")
    if isinstance(waiting, Mapping) and isinstance(waiting.get("interventionId"), str):
        return str(waiting["interventionId"])
    response = client.list_interventions(params={"job_id": job_id, "status": "pending"})
    body = body_of(response) if response.status_code == 200 else None
    items = body.get("interventions", body.get("data")) if isinstance(body, Mapping) else body
    pending = [
        item
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, Mapping) and isinstance(item.get("id"), str)
    ]
    if not pending:
        raise ConformanceFailure(
            f"job {job_id} is waiting but names no intervention",
            f"waitingFor {waiting!r}; GET /v1/interventions?job_id= answered "
            f"{response.status_code} {response.text[:200]}",
        )
    return str(pending[0]["id"])


def auvy_machine(client: AuvyClient, ctx: Context) -> type[LifecycleMachine]:
    workspace = str(ctx.extra["workspace_id"])
    kinds = sorted(k for k in AUVY_SETTLES if k in ctx.fixtures)

    class AuvyLifecycle(LifecycleMachine):
        terminal = TERMINAL
        jobs = Bundle("jobs")

        def __init__(self) -> None:
            super().__init__()
            self.waiting_for: dict[str, str] = {}  # job id -> its intervention id
            self.stream_ids: dict[str, list[str]] = {}

        def settle(self, job_id: str, statuses: Collection[str]) -> dict[str, Any]:
            return client.wait_for(job_id, set(statuses), ctx.settle_s)

        def refused(self, response: httpx.Response, what: str) -> None:
            """An operation the job's status does not allow: the reference answers 400
            VALIDATION_ERROR; the documents only promise a refusal from the error table."""
            if ctx.reference:
                self.agree(what, lambda: auvy_error_envelope(response, 400, "VALIDATION_ERROR"))
            else:
                self.agree(what, lambda: auvy_refusal(response))

        def outcome(self, job: str, snap: dict[str, Any], reference: str, what: str) -> None:
            """Record where a job the caller let go of ended: any terminal status the target
            chooses, or with `ctx.reference` the reference's own outcome."""
            if ctx.reference and snap["status"] != reference:
                self.fail(f"after {what} the job ended {snap['status']!r}, not {reference!r}")
            self.expected[job] = str(snap["status"])

        @rule(target=jobs, kind=st.sampled_from(kinds))
        def start(self, kind: str) -> str:
            job_id = client.start(ctx.fixtures[kind])
            self.sent(f"start a job of the {kind!r} pathway -> {_short(job_id)}")
            expected = AUVY_SETTLES[kind]
            snap = self.agree(f"start {kind}", lambda: self.settle(job_id, {expected} | TERMINAL))
            if snap["status"] != expected:
                self.fail(f"a {kind!r} job settled as {snap['status']!r}, not {expected!r}")
            if expected == "waiting":
                self.waiting_for[job_id] = self.agree(
                    "the intervention", lambda: intervention_of(client, job_id, snap)
                )
            self.expected[job_id] = expected
            return job_id

        @rule(job=jobs)
        def cancel(self, job: str) -> None:
            before = self.expected[job]
            response = client.cancel(job)
            self.sent(f"cancel {_short(job)} (model: {before})")
            if before in TERMINAL:
                self.agree(
                    f"cancel of a {before} job",
                    lambda: auvy_error_envelope(response, 400, "VALIDATION_ERROR"),
                )
                return
            self.expect_2xx(response, f"cancel of a {before} job")
            # The documented statuses have no "cancelled": a cancelled job can only end failed.
            snap = self.agree("cancel", lambda: self.settle(job, TERMINAL))
            if snap["status"] != "failed":
                self.fail(f"a cancelled job ended {snap['status']!r}, not 'failed'")
            self.expected[job] = "failed"

        @rule(job=jobs)
        def resume(self, job: str) -> None:
            before = self.expected[job]
            response = client.resume(job)
            self.sent(f"resume {_short(job)} (model: {before})")
            if before == "paused" or (before == "waiting" and ctx.reference):
                self.expect_2xx(response, f"resume of a {before} job")
            elif not 200 <= response.status_code < 300:
                # Resume is documented for waiting or paused jobs only; what it does to any other
                # job (and to a waiting one whose question is unanswered) is left open.
                self.refused(response, f"resume of a {before} job")
                return
            elif before != "waiting":
                if ctx.reference:
                    self.fail(f"resume of a {before} job answered {response.status_code}")
                return  # accepted as a no-op: the invariant checks the status did not change
            snap = self.agree("resume", lambda: self.settle(job, TERMINAL))
            self.outcome(job, snap, "completed" if before == "paused" else snap["status"], "resume")

        @rule(job=jobs, action=st.sampled_from(["approve", "reject"]))
        def answer(self, job: str, action: str) -> None:
            before = self.expected[job]
            intervention = self.waiting_for.get(job, "int_never_asked")
            body = {
                "workspace_id": workspace,
                "input": {
                    "type": "intervention_response",
                    "interventionId": intervention,
                    "action": action,
                },
            }
            response = client.submit_input(job, body)
            self.sent(f"{action} {_short(job)} (model: {before})")
            if before != "waiting":
                # Nothing is asked of the job, so no input can match its intervention.
                self.refused(response, f"input to a {before} job")
                return
            self.expect_2xx(response, f"{action} of a waiting job")
            snap = self.agree(action, lambda: self.settle(job, TERMINAL))
            self.outcome(job, snap, "completed" if action == "approve" else "failed", action)

        @rule(job=jobs)
        def stream(self, job: str) -> None:
            if self.expected[job] not in TERMINAL:
                return  # the stream of a parked job stays open; the SSE property reads those
            read = client.read_stream(job)
            self.sent(f"read the stream of {_short(job)}")
            if read.status_code != 200:
                self.fail(f"the stream of a {self.expected[job]} job answered {read.status_code}")
            self.agree("stream", lambda: event_ids_strictly_increase(read.ids))
            want = "complete" if self.expected[job] == "completed" else "error"
            terminal = read.terminal
            if terminal is None or terminal.get("type") != want:
                self.fail(f"the stream of a {self.expected[job]} job ended with {terminal!r}")
            previous = self.stream_ids.setdefault(job, read.ids)
            if previous != read.ids:
                self.fail("a finished job's stream replays different event ids")

        def status_of(self, job: str) -> str:
            return str(client.status(job)["status"])

        def expect_2xx(self, response: httpx.Response, what: str) -> None:
            if not 200 <= response.status_code < 300:
                self.fail(f"{what} answered {response.status_code}: {response.text[:200]}")

        def cancel_live(self, job: str) -> None:
            client.cancel(job)

    AuvyLifecycle.ctx = ctx
    return AuvyLifecycle


# --- AVA ------------------------------------------------------------------------------------------

AVA_TERMINAL = frozenset({"completed", "failed", "cancelled"})
AVA_SETTLES: Mapping[str, str] = {"complete": "completed", "fail": "failed", "long": "running"}


def ava_machine(client: AvaClient, ctx: Context) -> type[LifecycleMachine]:
    finishing = sorted(k for k in AVA_SETTLES if k in ctx.fixtures and k != "long")

    class AvaLifecycle(LifecycleMachine):
        terminal = AVA_TERMINAL
        jobs = Bundle("jobs")

        def holds_a_slot(self) -> bool:
            return any(status not in AVA_TERMINAL for status in self.expected.values())

        # A tenant runs a bounded number of jobs at once and queues the rest (documented, but
        # the bound is the deployment's, and other tests' jobs share the tenant's slots). A job
        # the model expects to finish can only be promised to when a slot is free, so the model
        # keeps at most one job of its own running: never more than one slot of the main tenant.
        @precondition(lambda self: "long" in ctx.fixtures and not self.holds_a_slot())
        @rule(target=jobs)
        def trigger_long(self) -> str:
            return self.trigger("long")

        @precondition(lambda self: bool(finishing))
        @rule(target=jobs, kind=st.sampled_from(finishing or ["complete"]))
        def trigger_finishing(self, kind: str) -> str:
            return self.trigger(kind)

        def trigger(self, kind: str) -> str:
            response = client.trigger({"worker_id": ctx.fixtures[kind]})
            # "triggering one returns immediately with a job record": 201 and 202 both say so.
            accepted = (201,) if ctx.reference else (201, 202)
            if response.status_code not in accepted:
                self.sent(f"trigger the {kind!r} worker")
                self.fail(f"a trigger answered {response.status_code}, not {accepted}")
            record = self.agree("trigger", lambda: AvaClient.data(response, "trigger", accepted))
            job_id = str(record["id"]) if isinstance(record, dict) and "id" in record else ""
            self.sent(f"trigger the {kind!r} worker -> {_short(job_id)}")
            if not job_id:
                self.fail(f"a trigger's job record has no id: {record!r}")
            expected = AVA_SETTLES[kind]
            job = self.agree(
                "trigger", lambda: client.wait_for(job_id, {expected} | AVA_TERMINAL, ctx.settle_s)
            )
            if job["status"] != expected:
                self.fail(f"a {kind!r} job settled as {job['status']!r}, not {expected!r}")
            self.expected[job_id] = expected
            return job_id

        @rule(job=jobs)
        def cancel(self, job: str) -> None:
            before = self.expected[job]
            response = client.cancel(job)
            self.sent(f"cancel {_short(job)} (model: {before})")
            if before in AVA_TERMINAL:
                self.agree(
                    f"cancel of a {before} job",
                    lambda: ava_error_envelope(response, 409, "resource_conflict"),
                )
                return
            if ctx.reference:
                # The reference cancels at once: the invariant reads it cancelled right away.
                if response.status_code != 200:
                    self.fail(f"cancel of a {before} job answered {response.status_code}")
                self.expected[job] = "cancelled"
                return
            if not 200 <= response.status_code < 300:
                self.fail(f"cancel of a {before} job answered {response.status_code}")
            # A running job is cancelled by signalling its worker, which may take a while.
            final = self.agree("cancel", lambda: client.wait_for(job, AVA_TERMINAL, ctx.settle_s))
            if final["status"] != "cancelled":
                self.fail(f"a cancelled {before} job ended {final['status']!r}")
            self.expected[job] = "cancelled"

        @rule(job=jobs)
        def logs(self, job: str) -> None:
            response = client.get_logs(job)
            self.sent(f"read the logs of {_short(job)}")
            if response.status_code != 200:
                self.fail(f"logs of a {self.expected[job]} job answered {response.status_code}")

        def status_of(self, job: str) -> str:
            return str(client.job(job)["status"])

        def cancel_live(self, job: str) -> None:
            client.cancel(job)

    AvaLifecycle.ctx = ctx
    return AvaLifecycle


# --- Strait ---------------------------------------------------------------------------------------

STRAIT_TERMINAL = frozenset(
    {"completed", "failed", "timed_out", "crashed", "system_failed", "canceled", "expired"}
)
STRAIT_REPLAYABLE = frozenset({"failed", "timed_out", "crashed", "system_failed"})
STRAIT_SETTLES: Mapping[str, str] = {
    "complete": "completed",
    "fatal": "failed",
    "long": "executing",
}


def strait_machine(client: StraitClient, ctx: Context) -> type[LifecycleMachine]:
    kinds = sorted(k for k in STRAIT_SETTLES if k in ctx.fixtures)

    class StraitLifecycle(LifecycleMachine):
        noun = "run"
        terminal = STRAIT_TERMINAL
        runs = Bundle("runs")

        def settle(self, run_id: str, expected: str) -> str:
            run = self.agree(
                "settle",
                lambda: client.wait_for(run_id, {expected} | STRAIT_TERMINAL, ctx.settle_s),
            )
            return str(run["status"])

        def started(self, run_id: str, kind: str, label: str) -> str:
            expected = STRAIT_SETTLES[kind]
            self.sent(f"{label} -> {_short(run_id)}")
            status = self.settle(run_id, expected)
            if status != expected:
                self.fail(f"a {kind!r} run settled as {status!r}, not {expected!r}")
            self.expected[run_id] = expected
            self.kinds[run_id] = kind
            return run_id

        def __init__(self) -> None:
            super().__init__()
            self.kinds: dict[str, str] = {}

        @rule(target=runs, kind=st.sampled_from(kinds))
        def trigger(self, kind: str) -> str:
            run_id = str(client.start(ctx.fixtures[kind])["id"])
            return self.started(run_id, kind, f"trigger the {kind!r} job")

        @rule(run=runs)
        def cancel(self, run: str) -> None:
            before = self.expected[run]
            response = client.cancel(run)
            self.sent(f"cancel {_short(run)} (model: {before})")
            if before in STRAIT_TERMINAL:
                self.agree(
                    f"cancel of a {before} run",
                    lambda: strait_error_envelope(response, 400, "bad_request"),
                )
                return
            # 200 with the run (FACTS.md) or the document's empty answer, 204.
            if response.status_code not in (200, 204):
                self.fail(f"cancel of a {before} run answered {response.status_code}")
            status = self.settle(run, "canceled")
            if status != "canceled":
                self.fail(f"a canceled {before} run ended {status!r}")
            self.expected[run] = "canceled"

        @rule(target=runs, run=runs)
        def replay(self, run: str) -> str:
            before = self.expected[run]
            response = client.replay(run)
            self.sent(f"replay {_short(run)} (model: {before})")
            if before not in STRAIT_REPLAYABLE:
                self.agree(
                    f"replay of a {before} run",
                    lambda: strait_error_envelope(response, 400, "bad_request"),
                )
                return run
            if response.status_code != 201:
                self.fail(f"replay of a {before} run answered {response.status_code}")
            new_id = str(body_of(response)["id"])
            if new_id == run:
                self.fail("replay returned the replayed run's own id, not a new run")
            return self.started(new_id, self.kinds[run], f"(the replay of {_short(run)})")

        def status_of(self, run: str) -> str:
            return str(client.run(run)["status"])

        def cancel_live(self, run: str) -> None:
            client.cancel(run)

    StraitLifecycle.ctx = ctx
    return StraitLifecycle
