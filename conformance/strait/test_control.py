"""Cancel, replay, dlq-replay, pause, resume, restart, reschedule, debug and the idempotency-key
reset: each from the statuses that allow it, and from the wrong status its documented error with
the run left exactly as it was."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.checks import body_of, status_is, strait_error_envelope
from conformance.clients.sse import SseEvent
from conformance.clients.strait import (
    TERMINAL,
    StraitClient,
    from_now,
    nonce,
    parse_ts,
)
from conformance.profile import TargetProfile

req = pytest.mark.req
Job = Callable[[str], str]
JOB_OF = {
    "completed": "complete",
    "failed": "fatal",
    "timed_out": "timeout",
    "crashed": "crash",
    "system_failed": "system_fail",
    "dead_letter": "dead_letter",
}
# What must not move while a live run is refused an action (heartbeat_at may: it is alive).
LIVE_FIELDS = ("status", "attempt", "started_at", "scheduled_at", "finished_at", "error")


def run_in(strait: StraitClient, strait_job: Job, status: str, **fields: Any) -> dict[str, Any]:
    """A run in `status`: delayed (held), executing (a long job), or terminal."""
    if status == "delayed":
        return strait.held(strait_job("complete"), **fields)
    if status == "executing":
        return strait.executing(strait_job("long"), **fields)
    if status == "canceled":
        run_id = strait.held(strait_job("complete"), **fields)["id"]
        status_is(strait.cancel(run_id), (200, 204))
        return strait.wait_for(run_id, {"canceled"})
    return strait.finish(strait_job(JOB_OF[status]), status, **fields)


def unchanged(strait: StraitClient, before: dict[str, Any], what: str) -> None:
    after = strait.run(before["id"])
    if before["status"] in TERMINAL or before["status"] == "delayed":
        assert after == before, f"a refused {what} changed the run"
    else:
        moved = {k: (before[k], after[k]) for k in LIVE_FIELDS if before[k] != after[k]}
        assert not moved, f"a refused {what} changed the run: {moved}"


@pytest.fixture
def cleanup(strait: StraitClient) -> Iterator[list[str]]:
    """Run ids to cancel after the test (a refused cancel of a finished one is harmless)."""
    made: list[str] = []
    yield made
    for run_id in made:
        strait.cancel(run_id)


# -- cancel ---------------------------------------------------------------------------------------


@req("strait.cancel.live")
@pytest.mark.parametrize("status", ["delayed", "executing"])
def test_cancel_of_a_live_run_cancels_it(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    run = run_in(strait, strait_job, status)
    cleanup.append(run["id"])
    response = strait.cancel(run["id"])
    status_is(response, (200, 204))
    if response.status_code == 200:
        assert body_of(response)["status"] == "canceled", response.text[:300]
    final = strait.wait_for(run["id"], TERMINAL)
    assert final["status"] == "canceled", f"a canceled {status} run ended {final['status']}"
    assert final["finished_at"] is not None, "a canceled run has no finished_at"
    if status == "delayed":
        assert final["started_at"] is None, "a run canceled while delayed was started"
    time.sleep(0.2)
    assert strait.run(run["id"]) == final, "a canceled run changed afterwards"


@req("strait.cancel.terminal-400")
@pytest.mark.parametrize("status", ["completed", "failed", "canceled", "dead_letter"])
def test_cancel_of_a_terminal_run_is_400(
    strait: StraitClient, strait_job: Job, status: str
) -> None:
    before = run_in(strait, strait_job, status)
    error = strait_error_envelope(strait.cancel(before["id"]), 400, "bad_request")
    assert "terminal" in error["message"], error
    unchanged(strait, before, "cancel")


@req("strait.cancel.children")
def test_cancel_of_a_parent_cancels_its_live_children(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    count = int(profile.need("strait.facts.spawn_count"))
    parent = strait.start(strait_job("spawn_long"))["id"]
    children: list[dict[str, Any]] = []
    deadline = time.monotonic() + strait.timeout_s
    while time.monotonic() < deadline:
        children = strait.sub("listChildRuns", parent, "children").json()
        if len(children) == count and all(c["status"] == "executing" for c in children):
            break
        time.sleep(strait.poll_s)
    assert len(children) == count, f"{len(children)} children, expected {count}"
    status_is(strait.cancel(parent), (200, 204))
    assert strait.wait_for(parent, TERMINAL)["status"] == "canceled"
    for child in children:
        final = strait.wait_for(child["id"], TERMINAL)
        assert final["status"] == "canceled", f"a child of a canceled run is {final['status']}"


# -- replay ---------------------------------------------------------------------------------------


@req("strait.replay.new-run")
@pytest.mark.parametrize("status", ["failed", "timed_out", "crashed", "system_failed"])
def test_replay_makes_a_new_run_and_leaves_the_original(
    strait: StraitClient, strait_job: Job, status: str
) -> None:
    marker = nonce()
    original = run_in(strait, strait_job, status, payload={"nonce": marker, "n": [1, 2]})
    response = strait.replay(original["id"])
    status_is(response, 201)
    new = body_of(response)
    assert new["id"] != original["id"], "replay reused the run's id"
    assert new["attempt"] == 1 and new["triggered_by"] == "manual", new
    assert new["job_id"] == original["job_id"] and new["payload"] == original["payload"]
    assert new["status"] == "queued", f"a replay starts {new['status']}"
    assert strait.run(new["id"])["id"] == new["id"], "the new run cannot be read"
    assert strait.run(original["id"]) == original, "replay changed the original run"
    assert sorted(r["id"] for r in strait.replays_of(marker)) == sorted([original["id"], new["id"]])
    strait.wait_for(new["id"], TERMINAL)


@req("strait.replay.not-replayable")
@pytest.mark.parametrize("status", ["completed", "canceled", "dead_letter", "delayed"])
def test_replay_of_a_run_that_did_not_fail_is_400(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    marker = nonce()
    before = run_in(strait, strait_job, status, payload={"nonce": marker})
    cleanup.append(before["id"])
    strait_error_envelope(strait.replay(before["id"]), 400, "bad_request")
    unchanged(strait, before, "replay")
    assert [r["id"] for r in strait.replays_of(marker)] == [before["id"]], "replay made a run"


# -- dead-letter replay ---------------------------------------------------------------------------


@req("strait.dlq-replay.in-place")
def test_dlq_replay_requeues_the_same_run(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    attempts = int(profile.need("strait.facts.dead_letter_attempts"))
    marker = nonce()
    dead = run_in(strait, strait_job, "dead_letter", payload={"nonce": marker})
    response = strait.dlq_replay(dead["id"])
    status_is(response, 200)
    run = body_of(response)
    assert run["id"] == dead["id"], "dlq-replay made a new run"
    assert run["status"] == "queued" and run["attempt"] == 1, (run["status"], run["attempt"])
    assert dead["id"] not in [r["id"] for r in strait.list_dlq().json()] or (
        strait.run(dead["id"])["status"] == "dead_letter"
    ), "a replayed run is still in the DLQ while live"
    # It executes again: the job always fails, so it is dead-lettered again, later.
    again = strait.wait_until(
        dead["id"],
        lambda r: r["status"] == "dead_letter" and r["finished_at"] != dead["finished_at"],
        "a second dead-lettering",
    )
    assert again["attempt"] == attempts
    assert parse_ts(again["finished_at"]) > parse_ts(dead["finished_at"])
    assert [r["id"] for r in strait.replays_of(marker)] == [dead["id"]], "a new run appeared"


@req("strait.dlq-replay.not-dead-letter")
@pytest.mark.parametrize("status", ["completed", "failed", "delayed"])
def test_dlq_replay_of_a_run_not_dead_lettered_is_409(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    before = run_in(strait, strait_job, status)
    cleanup.append(before["id"])
    strait_error_envelope(strait.dlq_replay(before["id"]), 409, "conflict")
    unchanged(strait, before, "dlq-replay")


# -- pause, resume, restart -----------------------------------------------------------------------


@req("strait.pause-resume")
def test_pause_stops_an_executing_run_and_resume_queues_it(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    run = run_in(strait, strait_job, "executing")
    cleanup.append(run["id"])
    response = strait.action("pause", run["id"])
    status_is(response, 200)
    paused = body_of(response)
    assert paused["id"] == run["id"] and paused["status"] == "waiting", paused["status"]
    time.sleep(0.3)
    held = strait.run(run["id"])
    assert held["status"] == "waiting", f"a paused run became {held['status']}"
    response = strait.action("resume", run["id"])
    status_is(response, 200)
    resumed = body_of(response)
    assert resumed["id"] == run["id"] and resumed["status"] == "queued", resumed["status"]
    again = strait.wait_for(run["id"], {"executing"})
    assert again["attempt"] == run["attempt"]


@req("strait.pause.wrong-state")
@pytest.mark.parametrize("status", ["delayed", "completed", "paused"])
def test_pause_of_a_run_that_is_not_executing_is_409(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    if status == "paused":
        run_id = run_in(strait, strait_job, "executing")["id"]
        status_is(strait.action("pause", run_id), 200)
        before = strait.run(run_id)
    else:
        before = run_in(strait, strait_job, status)
    cleanup.append(before["id"])
    strait_error_envelope(strait.action("pause", before["id"]), 409, "conflict")
    unchanged(strait, before, "pause")


@req("strait.resume.wrong-state")
@pytest.mark.parametrize("status", ["delayed", "executing", "completed"])
def test_resume_of_a_run_that_is_not_paused_is_409(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    before = run_in(strait, strait_job, status)
    cleanup.append(before["id"])
    strait_error_envelope(strait.action("resume", before["id"]), 409, "conflict")
    unchanged(strait, before, "resume")


@req("strait.resume.wrong-state")
def test_resume_of_a_waiting_run_that_was_not_paused_is_409(
    strait: StraitClient, strait_job: Job
) -> None:
    run_id = strait.held(strait_job("wait"))["id"]
    # The stream says the moment the run starts waiting, sooner than polling could.
    with strait.stream(run_id) as stream:
        assert stream.status_code == 200
        strait.release(run_id)
        for item in stream:
            if isinstance(item, SseEvent) and item.json().get("to") in {"waiting", *TERMINAL}:
                break
        before = strait.run(run_id)
        response = strait.action("resume", run_id)
    assert before["status"] == "waiting", f"the waiting job's run is {before['status']}"
    strait_error_envelope(response, 409, "conflict")
    assert strait.wait_for(run_id, TERMINAL)["status"] == "completed"


@req("strait.restart")
@pytest.mark.parametrize("paused", [False, True], ids=["executing", "paused"])
def test_restart_requeues_the_same_run(
    strait: StraitClient, strait_job: Job, cleanup: list[str], paused: bool
) -> None:
    run = run_in(strait, strait_job, "executing")
    cleanup.append(run["id"])
    if paused:
        status_is(strait.action("pause", run["id"]), 200)
    response = strait.action("restart", run["id"], {"machine_preset": "large-1x"})
    status_is(response, 200)
    restarted = body_of(response)
    assert restarted["id"] == run["id"], "restart made a new run"
    assert restarted["status"] == "queued", f"a restarted run is {restarted['status']}"
    again = strait.wait_for(run["id"], {"executing"})
    assert parse_ts(again["started_at"]) >= parse_ts(run["started_at"])


@req("strait.restart")
@pytest.mark.parametrize("status", ["delayed", "completed", "failed"])
def test_restart_from_another_status_is_409(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    before = run_in(strait, strait_job, status)
    cleanup.append(before["id"])
    strait_error_envelope(strait.action("restart", before["id"]), 409, "conflict")
    unchanged(strait, before, "restart")


# -- reschedule -----------------------------------------------------------------------------------


@req("strait.reschedule")
def test_reschedule_a_delayed_run_later_and_then_to_now(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    run = run_in(strait, strait_job, "delayed")
    cleanup.append(run["id"])
    at = from_now(7200)
    response = strait.reschedule(run["id"], {"scheduled_at": at})
    status_is(response, 200)
    later = body_of(response)
    assert later["status"] == "delayed", f"rescheduled later, the run is {later['status']}"
    assert parse_ts(later["scheduled_at"]) == parse_ts(at)
    assert parse_ts(strait.run(run["id"])["scheduled_at"]) == parse_ts(at)
    response = strait.reschedule(run["id"], {"scheduled_at": from_now(-1)})
    status_is(response, 200)
    assert body_of(response)["status"] == "queued", "rescheduled to the past, not queued"
    assert strait.wait_for(run["id"], TERMINAL)["status"] == "completed"


@req("strait.reschedule")
@pytest.mark.parametrize("status", ["completed", "canceled", "executing"])
def test_reschedule_from_another_status_is_409(
    strait: StraitClient, strait_job: Job, cleanup: list[str], status: str
) -> None:
    before = run_in(strait, strait_job, status)
    cleanup.append(before["id"])
    response = strait.reschedule(before["id"], {"scheduled_at": from_now(3600)})
    strait_error_envelope(response, 409, "conflict")
    unchanged(strait, before, "reschedule")


@req("strait.reschedule")
def test_reschedule_without_scheduled_at_is_422(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    before = run_in(strait, strait_job, "delayed")
    cleanup.append(before["id"])
    strait_error_envelope(strait.reschedule(before["id"], {}), 422, "validation_failed")
    unchanged(strait, before, "reschedule")
    malformed = strait.reschedule(before["id"], {"scheduled_at": "next tuesday"})
    strait_error_envelope(malformed, 400, "bad_request")
    unchanged(strait, before, "reschedule")


# -- debug mode -----------------------------------------------------------------------------------


@req("strait.debug")
def test_debug_sets_the_runs_debug_mode(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    run = run_in(strait, strait_job, "delayed")
    cleanup.append(run["id"])
    assert run["debug_mode"] is False
    status_is(strait.set_debug(run["id"], {"debug_mode": True}), (200, 204))
    assert strait.run(run["id"])["debug_mode"] is True, "debug_mode was not enabled"
    status_is(strait.set_debug(run["id"], {"debug_mode": False}), (200, 204))
    assert strait.run(run["id"])["debug_mode"] is False, "debug_mode was not disabled"


@req("strait.debug")
@pytest.mark.parametrize("value", ["yes", 1, None, {"on": True}])
def test_debug_mode_that_is_not_a_boolean_is_400(
    strait: StraitClient, strait_job: Job, cleanup: list[str], value: object
) -> None:
    before = run_in(strait, strait_job, "delayed")
    cleanup.append(before["id"])
    response = strait.set_debug(before["id"], {"debug_mode": value})
    strait_error_envelope(response, 400, "bad_request")
    unchanged(strait, before, "debug change")


# -- idempotency-key reset ------------------------------------------------------------------------


@req("strait.idempotency.reset")
def test_reset_releases_the_key_for_a_new_run(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    key = f"conf-{nonce()}"
    first = strait.held(strait_job("complete"), idempotency_key=key)
    cleanup.append(first["id"])
    response = strait.reset_key(first["id"])
    status_is(response, 200)
    assert body_of(response) == {"status": "reset", "run_id": first["id"]}
    again = strait.trigger(strait_job("complete"), {}, idempotency_key=key)
    status_is(again, 201)
    second = body_of(again)
    cleanup.append(second["id"])
    assert second["id"] != first["id"], "the reset key still returned the earlier run"
    assert strait.run(first["id"])["status"] == "delayed", "the reset changed the run's status"


@req("strait.idempotency.reset")
def test_reset_of_an_executing_run_is_409(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    key = f"conf-{nonce()}"
    run = strait.executing(strait_job("long"), idempotency_key=key)
    cleanup.append(run["id"])
    strait_error_envelope(strait.reset_key(run["id"]), 409, "conflict")
    assert strait.run(run["id"])["idempotency_key"] == key, "a refused reset dropped the key"
    hit = strait.trigger(strait_job("long"), {}, idempotency_key=key)
    status_is(hit, 200)
    assert body_of(hit)["id"] == run["id"], "after a refused reset the key made a new run"
