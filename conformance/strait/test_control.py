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
    PAUSED,
    TERMINAL,
    StraitClient,
    documented,
    from_now,
    nonce,
    parse_ts,
    refused,
    same_run,
)
from conformance.deviations import recorded_deviation
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
# How long a finished or paused run is watched for a change that must not come: several of the
# server's steps even when jobs are paced in seconds and requests take 100 ms.
SETTLE_S = 1.0


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
        old, new = documented(before), documented(after)
        moved = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
    else:
        moved = {
            k: (before.get(k), after.get(k)) for k in LIVE_FIELDS if before.get(k) != after.get(k)
        }
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
    # FACTS.md: 200 with the run (the live system); the document's answer is Empty (204).
    status_is(response, (200, 204))
    if response.status_code == 200:
        answered = body_of(response)
        assert answered["id"] == run["id"], "cancel answered another run"
        assert answered["status"] == "canceled", response.text[:300]
    final = strait.wait_for(run["id"], TERMINAL)
    assert final["status"] == "canceled", f"a canceled {status} run ended {final['status']}"
    assert final.get("finished_at") is not None, "a canceled run has no finished_at"
    if status == "delayed":
        assert final.get("started_at") is None, "a run canceled while delayed was started"
    time.sleep(SETTLE_S)
    assert same_run(strait.run(run["id"]), final), "a canceled run changed afterwards"


@req("strait.decision.cancel-204")
def test_the_reference_answers_cancel_with_204(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    run = run_in(strait, strait_job, "delayed")
    cleanup.append(run["id"])
    response = strait.cancel(run["id"])
    if response.status_code == 200 and body_of(response).get("status") == "canceled":
        recorded_deviation("cancel answers 200 with the canceled run, not the document's Empty")
    status_is(response, 204)
    assert not response.content, "a 204 cancel carried a body"


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
        children = body_of(strait.sub("listChildRuns", parent, "children"))
        if len(children) == count and all(c["status"] == "executing" for c in children):
            break
        time.sleep(strait.poll_s)
    assert len(children) == count, f"{len(children)} children, expected {count}"
    assert all(c["status"] == "executing" for c in children), [c["status"] for c in children]
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
    # A new run is live: queued, or already picked up by a fast target (FACTS.md's table).
    assert new["status"] in {"queued", "dequeued", "executing", *TERMINAL}, new["status"]
    assert new["status"] != "delayed", "a replay is delayed"
    assert strait.run(new["id"])["id"] == new["id"], "the new run cannot be read"
    assert same_run(strait.run(original["id"]), original), "replay changed the original run"
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
    # The DLQ holds dead-lettered runs only: if the run is listed, it is its second dead-lettering.
    for listed in strait.dlq():
        assert listed["status"] == "dead_letter", f"the DLQ lists a {listed['status']} run"
        if listed["id"] == dead["id"]:
            assert listed.get("finished_at") != dead.get("finished_at"), (
                "a replayed run is still listed"
            )
    # It executes again: the job always fails, so it is dead-lettered again, later.
    again = strait.wait_until(
        dead["id"],
        lambda r: r["status"] == "dead_letter" and r.get("finished_at") != dead.get("finished_at"),
        "a second dead-lettering",
    )
    assert again["attempt"] == attempts
    assert parse_ts(again.get("finished_at")) > parse_ts(dead.get("finished_at"))
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
    assert paused["id"] == run["id"], "pause answered another run"
    # The document's enum has no paused (waiting); the live system says paused (FACTS.md).
    assert paused["status"] in PAUSED, f"a paused run is {paused['status']}"
    time.sleep(SETTLE_S)
    held = strait.run(run["id"])
    assert held["status"] == paused["status"], f"a paused run became {held['status']}"
    response = strait.action("resume", run["id"])
    status_is(response, 200)
    resumed = body_of(response)
    assert resumed["id"] == run["id"], "resume answered another run"
    # queued, or already picked up again by a fast target.
    assert resumed["status"] in {"queued", "dequeued", "executing"}, resumed["status"]
    again = strait.wait_for(run["id"], {"executing"})
    assert again["attempt"] == run["attempt"]


@req("strait.decision.pause-waiting")
def test_the_reference_reports_a_paused_run_as_waiting(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    run = run_in(strait, strait_job, "executing")
    cleanup.append(run["id"])
    response = strait.action("pause", run["id"])
    status_is(response, 200)
    if body_of(response)["status"] == "paused" and strait.run(run["id"])["status"] == "paused":
        recorded_deviation("a paused run reports `paused`, which the document's enum lacks")
    assert body_of(response)["status"] == "waiting", body_of(response)["status"]
    assert strait.run(run["id"])["status"] == "waiting"
    resumed = strait.action("resume", run["id"])
    status_is(resumed, 200)
    assert body_of(resumed)["status"] == "queued", body_of(resumed)["status"]


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
    # The stream says the moment the run starts waiting, sooner than polling could. The resume
    # goes out at once; however long the wait lasts, a run that was never paused is refused
    # (waiting, executing again or completed: none is paused).
    seen: list[str] = []
    with strait.stream(run_id) as stream:
        assert stream.status_code == 200
        strait.release(run_id)
        for item in stream:
            if isinstance(item, SseEvent):
                frame = item.json()
                if isinstance(frame, dict) and frame.get("type") == "status_change":
                    seen.append(str(frame.get("to")))
                    if seen[-1] in {"waiting", *TERMINAL}:
                        break
        response = strait.action("resume", run_id)
    assert seen and seen[-1] == "waiting", f"the waiting job's run went {' -> '.join(seen)}"
    strait_error_envelope(response, 409, "conflict")
    final = strait.wait_for(run_id, TERMINAL)
    assert final["status"] == "completed", final["status"]


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
    assert restarted["status"] in {"queued", "dequeued", "executing"}, restarted["status"]
    again = strait.wait_for(run["id"], {"executing"})
    assert parse_ts(again.get("started_at")) >= parse_ts(run.get("started_at"))


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
    assert parse_ts(later.get("scheduled_at")) == parse_ts(at)
    assert parse_ts(strait.run(run["id"])["scheduled_at"]) == parse_ts(at)
    response = strait.reschedule(run["id"], {"scheduled_at": from_now(-1)})
    status_is(response, 200)
    # FACTS.md: "a time <= now makes it queued"; a fast target may have picked it up already.
    moved = body_of(response)["status"]
    assert moved in {"queued", "dequeued", "executing", "completed"}, moved
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
    refused(malformed)
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
    refused(response)
    unchanged(strait, before, "debug change")


@req("strait.decision.validation-400")
def test_the_reference_refuses_a_bad_debug_mode_with_400(
    strait: StraitClient, strait_job: Job, cleanup: list[str]
) -> None:
    run = run_in(strait, strait_job, "delayed")
    cleanup.append(run["id"])
    strait_error_envelope(strait.set_debug(run["id"], {"debug_mode": "yes"}), 400, "bad_request")
    malformed = strait.reschedule(run["id"], {"scheduled_at": "next tuesday"})
    strait_error_envelope(malformed, 400, "bad_request")


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
    answer = body_of(response)
    # FACTS.md: `{status: "reset", run_id}`; other fields may come with it.
    assert (answer.get("status"), answer.get("run_id")) == ("reset", first["id"]), answer
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
