"""bulk-cancel, bulk-cancel-all, bulk-replay and bulk-dlq-replay with eligible and ineligible runs
mixed: per-run results where the document gives them, and never a silent half-application."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import body_of, status_is, strait_error_envelope
from conformance.clients.strait import (
    TERMINAL,
    StraitClient,
    new_batch,
    nonce,
    refused,
    same_run,
)
from conformance.profile import TargetProfile

req = pytest.mark.req
Job = Callable[[str], str]
MakeClient = Callable[[str | None], StraitClient]


def unknown_id() -> str:
    return str(uuid.uuid4())


def statuses(strait: StraitClient, *run_ids: str) -> list[str]:
    return [strait.run(r)["status"] for r in run_ids]


# -- bulk-cancel ----------------------------------------------------------------------------------


@req("strait.bulk.cancel")
def test_bulk_cancel_cancels_the_live_runs_and_reports_every_id(
    strait: StraitClient, strait_job: Job
) -> None:
    live = [strait.held(strait_job("complete"))["id"] for _ in range(2)]
    executing = strait.executing(strait_job("long"))["id"]
    done = strait.finish(strait_job("complete"), "completed")
    missing = unknown_id()
    asked = [live[0], done["id"], executing, missing, live[1]]
    response = strait.bulk_cancel({"run_ids": asked})
    status_is(response, 200)
    result = body_of(response)
    by_id = {item["id"]: item for item in result["results"]}
    assert sorted(by_id) == sorted(asked), "results do not report every requested id"
    assert result["total"] == len(asked)
    assert result["canceled"] + result["failed"] == result["total"], result
    assert (result["canceled"], result["failed"]) == (3, 2), result
    for run_id in (*live, executing):
        assert not by_id[run_id].get("error"), by_id[run_id]
        assert by_id[run_id]["status"] == "canceled", by_id[run_id]
        assert strait.wait_for(run_id, TERMINAL)["status"] == "canceled"
    for run_id in (done["id"], missing):
        assert by_id[run_id].get("error"), f"no error for {run_id}, which was not canceled"
    assert same_run(strait.run(done["id"]), done), "bulk-cancel changed a completed run"


@req("strait.bulk.cancel", "strait.access.other-project-404")
def test_bulk_cancel_does_not_touch_another_projects_runs(
    strait: StraitClient, strait_as: MakeClient, strait_job: Job
) -> None:
    run = strait.held(strait_job("complete"))
    other = strait_as("other")
    response = other.bulk_cancel({"run_ids": [run["id"]]})
    status_is(response, 200)
    result = body_of(response)
    assert (result["canceled"], result["failed"], result["total"]) == (0, 1, 1), result
    assert result["results"][0].get("error"), result
    assert same_run(strait.run(run["id"]), run), "another project's key canceled the run"
    strait.cancel(run["id"])


@req("strait.bulk.cancel-validation")
@pytest.mark.parametrize("shape", ["missing", "empty", "101", "not-a-list"])
def test_bulk_cancel_with_bad_run_ids_is_400_and_cancels_nothing(
    strait: StraitClient, strait_job: Job, shape: str
) -> None:
    run = strait.held(strait_job("complete"))
    body: dict[str, Any] = {
        "missing": {},
        "empty": {"run_ids": []},
        "101": {"run_ids": [run["id"]] + [unknown_id() for _ in range(100)]},
        "not-a-list": {"run_ids": run["id"]},
    }[shape]
    refused(strait.bulk_cancel(body))
    assert same_run(strait.run(run["id"]), run), "a refused bulk-cancel canceled a run"
    strait.cancel(run["id"])


# -- bulk-cancel-all ------------------------------------------------------------------------------


@req("strait.bulk.cancel-all")
def test_bulk_cancel_all_cancels_only_matching_live_runs(
    strait: StraitClient, strait_job: Job
) -> None:
    batch, elsewhere = new_batch(), new_batch()
    complete, wait = strait_job("complete"), strait_job("wait")
    targets = [strait.held(complete, batch_id=batch)["id"] for _ in range(2)]
    executing = strait.executing(strait_job("long"), batch_id=batch)["id"]
    other_job = strait.held(wait, batch_id=batch)["id"]
    other_batch = strait.held(complete, batch_id=elsewhere)["id"]
    done = strait.finish(complete, "completed", batch_id=batch)
    try:
        response = strait.bulk_cancel_all({"batch_id": batch, "job_id": complete})
        status_is(response, 200)
        result = body_of(response)
        reported = {item["id"] for item in result["results"]}
        assert reported == set(targets), "cancel-all tried other runs than the live matching ones"
        assert (result["canceled"], result["failed"], result["total"]) == (2, 0, 2), result
        assert statuses(strait, *targets) == ["canceled", "canceled"]
        assert statuses(strait, other_job, other_batch) == ["delayed", "delayed"]
        assert strait.run(executing)["status"] == "executing", "another job's run was canceled"
        assert same_run(strait.run(done["id"]), done), "cancel-all changed a completed run"
        by_status = strait.bulk_cancel_all({"batch_id": batch, "status": "executing"})
        assert {i["id"] for i in body_of(by_status)["results"]} == {executing}
        assert strait.wait_for(executing, TERMINAL)["status"] == "canceled"
        assert strait.run(other_job)["status"] == "delayed"
    finally:
        strait.bulk_cancel_all({"batch_id": batch})
        strait.bulk_cancel_all({"batch_id": elsewhere})


@req("strait.bulk.cancel-all")
def test_bulk_cancel_all_without_a_filter_is_400(strait: StraitClient, strait_job: Job) -> None:
    run = strait.held(strait_job("complete"))
    # FACTS.md says a filter is needed, not which refusal: 400 or 422, both in its table.
    refused(strait.bulk_cancel_all({}))
    assert same_run(strait.run(run["id"]), run), "a refused cancel-all canceled a run"
    strait.cancel(run["id"])


# -- bulk-replay ----------------------------------------------------------------------------------


@req("strait.bulk.replay")
def test_bulk_replay_answers_a_new_run_per_id(strait: StraitClient, strait_job: Job) -> None:
    markers = [nonce(), nonce()]
    failed = strait.finish(strait_job("fatal"), "failed", payload={"nonce": markers[0]})
    crashed = strait.finish(strait_job("crash"), "crashed", payload={"nonce": markers[1]})
    response = strait.bulk_replay({"run_ids": [failed["id"], crashed["id"]]})
    status_is(response, 200)
    new = body_of(response)
    assert isinstance(new, list) and len(new) == 2, "not one new run per id"
    for original, run in zip((failed, crashed), new, strict=True):
        assert run["id"] not in (failed["id"], crashed["id"]), "bulk-replay reused an id"
        assert run["job_id"] == original["job_id"] and run["payload"] == original["payload"]
        assert run["attempt"] == 1 and run["triggered_by"] == "manual", run
        assert same_run(strait.run(original["id"]), original), "bulk-replay changed the original"
    for marker, original, run in zip(markers, (failed, crashed), new, strict=True):
        found = sorted(r["id"] for r in strait.replays_of(marker))
        assert found == sorted([original["id"], run["id"]])


# Nothing says whether a bulk-replay with an ineligible id replays the others: all-or-nothing is
# the reference's choice.
@req("strait.decision.bulk-replay-all-or-nothing")
@pytest.mark.parametrize("bad", ["completed", "unknown"])
def test_bulk_replay_with_an_ineligible_id_replays_nothing(
    strait: StraitClient, strait_job: Job, bad: str
) -> None:
    marker = nonce()
    failed = strait.finish(strait_job("fatal"), "failed", payload={"nonce": marker})
    if bad == "completed":
        bad_id = strait.finish(strait_job("complete"), "completed", payload={"nonce": marker})["id"]
    else:
        bad_id = unknown_id()
    response = strait.bulk_replay({"run_ids": [failed["id"], bad_id]})
    strait_error_envelope(response, 400, "bad_request")
    existing = {failed["id"], bad_id} if bad == "completed" else {failed["id"]}
    found = {r["id"] for r in strait.replays_of(marker)}
    assert found == existing, "a refused bulk-replay replayed a run"
    assert same_run(strait.run(failed["id"]), failed)


# -- bulk-dlq-replay ------------------------------------------------------------------------------


def dead_letter_runs(strait: StraitClient, job_id: str, count: int) -> list[dict[str, Any]]:
    made = [strait.start(job_id)["id"] for _ in range(count)]
    return [strait.wait_for(run_id, {"dead_letter"}) for run_id in made]


@req("strait.bulk.dlq-replay")
def test_bulk_dlq_replay_by_run_ids_requeues_them_in_place(
    strait: StraitClient, strait_job: Job
) -> None:
    dead = dead_letter_runs(strait, strait_job("dead_letter"), 2)
    response = strait.bulk_dlq_replay({"run_ids": [r["id"] for r in dead]})
    status_is(response, 200)
    result = body_of(response)
    assert result["count"] == len(result["replayed"]) == 2, result
    assert [r["id"] for r in result["replayed"]] == [r["id"] for r in dead], "ids changed"
    for run in result["replayed"]:
        assert run["status"] == "queued" and run["attempt"] == 1, (run["status"], run["attempt"])
    for run in dead:
        strait.wait_until(
            run["id"],
            lambda r, before=run: (
                r["status"] == "dead_letter" and r.get("finished_at") != before.get("finished_at")
            ),
            "a second dead-lettering",
        )


@req("strait.bulk.dlq-replay")
def test_bulk_dlq_replay_by_project_requeues_every_dead_letter(
    strait_as: MakeClient, profile: TargetProfile
) -> None:
    lab = strait_as("dlqlab")
    dead = dead_letter_runs(lab, str(profile.need("strait.dlqlab.dead_letter_job")), 2)
    response = lab.bulk_dlq_replay({"project_id": lab.project_id})
    status_is(response, 200)
    result = body_of(response)
    replayed = {r["id"]: r for r in result["replayed"]}
    assert result["count"] == len(replayed), result["count"]
    assert {r["id"] for r in dead} <= set(replayed), "a dead-lettered run was not replayed"
    for run in replayed.values():
        assert run["status"] == "queued" and run["attempt"] == 1, (run["status"], run["attempt"])
        assert run["project_id"] == lab.project_id


@req("strait.bulk.dlq-replay")
@pytest.mark.parametrize("body", ["both", "neither"])
def test_bulk_dlq_replay_needs_exactly_one_of_run_ids_and_project_id(
    strait: StraitClient, strait_job: Job, body: str
) -> None:
    dead = dead_letter_runs(strait, strait_job("dead_letter"), 1)[0]
    sent: dict[str, Any] = (
        {"run_ids": [dead["id"]], "project_id": strait.project_id} if body == "both" else {}
    )
    response = strait.bulk_dlq_replay(sent)
    status_is(response, (400, 422))
    assert same_run(strait.run(dead["id"]), dead), "a refused bulk-dlq-replay replayed the run"


@req("strait.bulk.dlq-replay")
def test_bulk_dlq_replay_with_a_run_not_dead_lettered_replays_nothing(
    strait: StraitClient, strait_job: Job
) -> None:
    dead = dead_letter_runs(strait, strait_job("dead_letter"), 1)[0]
    done = strait.finish(strait_job("complete"), "completed")
    response = strait.bulk_dlq_replay({"run_ids": [dead["id"], done["id"]]})
    # x-decision: 409 conflict; a 400 (a bad request as a whole) also leaves everything alone.
    status_is(response, (400, 409))
    strait_error_envelope(response, response.status_code, ("bad_request", "conflict"))
    assert same_run(strait.run(dead["id"]), dead), "the dead-lettered run was replayed anyway"
    assert same_run(strait.run(done["id"]), done)


@req("strait.decision.bulk-dlq-replay-409")
def test_the_reference_answers_409_for_a_run_not_dead_lettered(
    strait: StraitClient, strait_job: Job
) -> None:
    dead = dead_letter_runs(strait, strait_job("dead_letter"), 1)[0]
    done = strait.finish(strait_job("complete"), "completed")
    response = strait.bulk_dlq_replay({"run_ids": [dead["id"], done["id"]]})
    strait_error_envelope(response, 409, "conflict")
