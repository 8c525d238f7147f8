"""GET /v1/runs with each filter, limit and cursor pagination, and GET /v1/runs/dlq.

Other tests create runs in the same project at the same time, so each check works on runs of its
own batch (or finds its own runs by payload) and claims nothing about anyone else's.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import body_of, status_is, strait_error_envelope
from conformance.clients.strait import (
    TERMINAL,
    StraitClient,
    items_of,
    new_batch,
    nonce,
    parse_ts,
    refused,
    shift,
)
from conformance.deviations import recorded_deviation

req = pytest.mark.req
Job = Callable[[str], str]


def ids(runs: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in runs]


def newest_first(runs: list[dict[str, Any]]) -> None:
    stamps = [parse_ts(r["created_at"]) for r in runs]
    for a, b in itertools.pairwise(stamps):
        assert a >= b, f"not newest first: {a.isoformat()} before {b.isoformat()}"


def cancel_batch(strait: StraitClient, batch: str) -> None:
    strait.bulk_cancel_all({"batch_id": batch})


@req("strait.list.runs")
def test_list_holds_the_projects_runs_newest_first(strait: StraitClient, strait_job: Job) -> None:
    batch = new_batch()
    made = [strait.held(strait_job("complete"), batch_id=batch)["id"] for _ in range(3)]
    try:
        response = strait.list_runs({"batch_id": batch})
        status_is(response, 200)
        # The document's plain array, or the live system's {data, ...} page (FACTS.md).
        found = items_of(body_of(response))
        assert ids(found) == made[::-1], "the batch's runs are not listed newest first"
        everything = strait.runs()
        assert everything, "the project's list is empty right after creating runs"
        assert {r["project_id"] for r in everything} == {strait.project_id}
        newest_first(everything)
    finally:
        cancel_batch(strait, batch)


@req("strait.list.status")
def test_status_keeps_runs_in_exactly_that_status(strait: StraitClient, strait_job: Job) -> None:
    batch = new_batch()
    runs = {
        "delayed": strait.held(strait_job("complete"), batch_id=batch)["id"],
        "executing": strait.start(strait_job("long"), batch_id=batch)["id"],
        "completed": strait.start(strait_job("complete"), batch_id=batch)["id"],
        "failed": strait.start(strait_job("fatal"), batch_id=batch)["id"],
        "canceled": strait.held(strait_job("complete"), batch_id=batch)["id"],
    }
    try:
        strait.cancel(runs["canceled"])
        for status in ("executing", "completed", "failed", "canceled"):
            strait.wait_for(runs[status], {status})
        for status, run_id in runs.items():
            found = strait.runs(batch_id=batch, status=status)
            assert ids(found) == [run_id], f"status={status}: {[r['status'] for r in found]}"
            assert all(r["status"] == status for r in strait.runs(status=status)), status
        assert strait.runs(batch_id=batch, status="queued") == []
    finally:
        cancel_batch(strait, batch)


@req("strait.decision.list-plain-array")
def test_the_reference_lists_as_a_plain_array(strait: StraitClient, strait_job: Job) -> None:
    batch = new_batch()
    strait.held(strait_job("complete"), batch_id=batch)
    try:
        pages = 0
        for response in (strait.list_runs({"batch_id": batch}), strait.list_dlq()):
            status_is(response, 200)
            found = body_of(response)
            if isinstance(found, dict) and {"data", "next_cursor", "has_more"} <= set(found):
                pages += 1
                continue
            assert isinstance(found, list), f"the list is a {type(found).__name__}, not an array"
        if pages:
            recorded_deviation(
                f"{pages} of 2 lists answer {{data, next_cursor, has_more}}, not a plain array"
            )
    finally:
        cancel_batch(strait, batch)


# `paused` is left out: the live system knows it (FACTS.md), so it may accept it as a filter.
@req("strait.list.status")
@pytest.mark.parametrize("value", ["COMPLETED", "done", ""])
def test_a_status_outside_the_enum_is_400(strait: StraitClient, value: str) -> None:
    refused(strait.list_runs({"status": value}))


@req("strait.list.metadata")
def test_metadata_key_and_value_filter(strait: StraitClient, strait_job: Job) -> None:
    batch = new_batch()
    job = strait_job("complete")
    billing = strait.held(job, batch_id=batch, metadata={"team": "billing", "tier": "gold"})["id"]
    ops = strait.held(job, batch_id=batch, metadata={"team": "ops"})["id"]
    bare = strait.held(job, batch_id=batch)["id"]
    try:
        assert set(ids(strait.runs(batch_id=batch))) == {billing, ops, bare}
        assert set(ids(strait.runs(batch_id=batch, metadata_key="team"))) == {billing, ops}
        assert ids(strait.runs(batch_id=batch, metadata_key="tier")) == [billing]
        filtered = strait.runs(batch_id=batch, metadata_key="team", metadata_value="ops")
        assert ids(filtered) == [ops]
        none = strait.runs(batch_id=batch, metadata_key="team", metadata_value="nobody")
        assert none == []
        # The value is compared with the key's value, not with any value of the run.
        assert strait.runs(batch_id=batch, metadata_key="tier", metadata_value="billing") == []
        for run in strait.runs(metadata_key="team", metadata_value="billing"):
            assert run["metadata"].get("team") == "billing", run["metadata"]
    finally:
        cancel_batch(strait, batch)


def created_between(
    strait: StraitClient, oldest: str, newest: str, **params: Any
) -> list[dict[str, Any]]:
    """Runs matching `params` created from `oldest` to `newest` (inclusive), whatever other
    tests created meanwhile: pages from a cursor just after `newest` until past `oldest`."""
    found: list[dict[str, Any]] = []
    cursor = shift(newest, 1)
    for _ in range(50):
        page = strait.runs(**params, cursor=cursor, limit=100)
        found.extend(r for r in page if parse_ts(r["created_at"]) >= parse_ts(oldest))
        if len(page) < 100 or parse_ts(page[-1]["created_at"]) < parse_ts(oldest):
            return found
        cursor = page[-1]["created_at"]
    raise AssertionError("more than 5000 runs between two runs of one test")


@req("strait.list.triggered-by")
def test_triggered_by_separates_spawned_from_manual_runs(
    strait: StraitClient, strait_job: Job
) -> None:
    parent = strait.finish(strait_job("spawn"), "completed")
    children = strait.sub("listChildRuns", parent["id"], "children").json()
    assert children, "the spawning run has no children"
    newest = max(children, key=lambda r: parse_ts(r["created_at"]))["created_at"]
    window = (parent["created_at"], newest)
    spawned = created_between(strait, *window, triggered_by="spawn")
    assert {r["triggered_by"] for r in spawned} == {"spawn"}
    assert set(ids(children)) <= set(ids(spawned)), "spawned children are not listed as spawn"
    assert parent["id"] not in ids(spawned), "a manually triggered run is listed as spawn"
    manual = created_between(strait, *window, triggered_by="manual")
    assert {r["triggered_by"] for r in manual} == {"manual"}
    assert parent["id"] in ids(manual), "a triggered run is not listed as manual"
    assert not set(ids(children)) & set(ids(manual)), "spawned children are listed as manual"
    assert all(r["triggered_by"] == "cron" for r in strait.runs(triggered_by="cron"))


@req("strait.decision.filter-values")
def test_the_reference_refuses_an_unknown_trigger_source(strait: StraitClient) -> None:
    strait_error_envelope(strait.list_runs({"triggered_by": "someone"}), 400, "bad_request")


@req("strait.list.batch")
def test_batch_id_keeps_exactly_the_batchs_runs(strait: StraitClient, strait_job: Job) -> None:
    a, b = new_batch(), new_batch()
    job = strait_job("complete")
    in_a = {strait.held(job, batch_id=a)["id"] for _ in range(2)}
    in_b = {strait.held(job, batch_id=b)["id"]}
    outside = strait.held(job)["id"]
    try:
        assert set(ids(strait.runs(batch_id=a))) == in_a
        assert set(ids(strait.runs(batch_id=b))) == in_b
        assert all(r.get("batch_id") == a for r in strait.runs(batch_id=a))
        assert strait.runs(batch_id=new_batch()) == []
    finally:
        cancel_batch(strait, a)
        cancel_batch(strait, b)
        strait.cancel(outside)


@req("strait.list.payload-contains")
def test_payload_contains_is_json_containment(strait: StraitClient, strait_job: Job) -> None:
    batch, tag = new_batch(), nonce()
    job = strait_job("complete")
    payloads = {
        "eu-1": {"tag": tag, "region": "eu", "order": {"id": 1, "lines": [10, 20, 30]}},
        "eu-2": {"tag": tag, "region": "eu", "order": {"id": 2, "lines": []}},
        "us-flags": {"tag": tag, "region": "us", "flags": ["a", "b"], "n": 2},
    }
    made = {name: strait.held(job, batch_id=batch, payload=p)["id"] for name, p in payloads.items()}

    def matching(wanted: dict[str, Any]) -> set[str]:
        found = strait.runs(batch_id=batch, payload_contains=json.dumps(wanted))
        by_id = {v: k for k, v in made.items()}
        return {by_id.get(r["id"], r["id"]) for r in found}

    try:
        assert matching({"tag": tag}) == set(payloads)
        assert matching({"region": "eu"}) == {"eu-1", "eu-2"}
        assert matching({"order": {"id": 1}}) == {"eu-1"}, "nested objects are not contained"
        assert matching({"order": {"lines": [20]}}) == {"eu-1"}, "array elements"
        assert matching({"order": {"lines": [30, 10]}}) == {"eu-1"}, "array elements, any order"
        assert matching({"flags": ["b"], "region": "us"}) == {"us-flags"}
        assert matching({"n": 2}) == {"us-flags"}
        assert matching({"n": "2"}) == set(), "a string matched a number"
        assert matching({"region": "eu", "n": 2}) == set(), "filter members combine with AND"
        assert matching({"order": {"lines": [40]}}) == set()
        assert matching({}) == set(payloads), "the empty object is contained in every payload"
    finally:
        cancel_batch(strait, batch)


@req("strait.list.payload-contains")
@pytest.mark.parametrize("value", ["[1, 2]", '"eu"', "42", "not json", '{"open": '])
def test_payload_contains_that_is_not_a_json_object_is_400(
    strait: StraitClient, value: str
) -> None:
    refused(strait.list_runs({"payload_contains": value}))


@req("strait.list.limit")
def test_limit_defaults_to_50_and_is_capped_at_100(strait: StraitClient, strait_job: Job) -> None:
    batch = new_batch()
    job = strait_job("complete")
    for _ in range(101):
        strait.held(job, batch_id=batch)
    try:
        assert len(strait.runs(batch_id=batch)) == 50, "the default limit is not 50"
        assert len(strait.runs(batch_id=batch, limit=7)) == 7
        assert len(strait.runs(batch_id=batch, limit=100)) == 100
        assert len(strait.runs(batch_id=batch, limit=500)) == 100, "limit is not capped at 100"
    finally:
        cancel_batch(strait, batch)


@req("strait.list.limit")
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_limit_that_is_not_positive_is_400(strait: StraitClient, value: str) -> None:
    # FACTS.md: "limit <= 0 or a bad cursor -> 400".
    strait_error_envelope(strait.list_runs({"limit": value}), 400, "bad_request")


@req("strait.list.limit")
@pytest.mark.parametrize("value", ["ten", "1.5"])
def test_a_limit_that_is_not_an_integer_is_refused(strait: StraitClient, value: str) -> None:
    refused(strait.list_runs({"limit": value}))


@req("strait.list.cursor")
def test_cursor_pages_have_no_duplicates_and_no_gaps_while_runs_are_created(
    strait: StraitClient, strait_job: Job
) -> None:
    batch = new_batch()
    job = strait_job("complete")
    before = [strait.held(job, batch_id=batch)["id"] for _ in range(12)]
    during: list[str] = []
    seen: list[dict[str, Any]] = []
    pages = 0
    try:
        for page in strait.pages(5, batch_id=batch):
            pages += 1
            seen.extend(page)
            # Newer runs arrive between pages; a created_at cursor must not shift under them.
            during.append(strait.held(job, batch_id=batch)["id"])
        listed = ids(seen)
        assert pages >= 3, f"12 runs at limit 5 came in {pages} page(s)"
        assert len(listed) == len(set(listed)), "a run was listed on two pages"
        missing, extra = set(before) - set(listed), set(listed) - set(before)
        assert listed == before[::-1], (
            "pages did not list exactly the runs that existed, newest first: "
            f"missing {sorted(missing)}, extra {sorted(extra)}"
        )
        newest_first(seen)
        everything = ids([r for page in strait.pages(5, batch_id=batch) for r in page])
        assert everything == (before + during)[::-1], "a fresh walk missed or repeated runs"
    finally:
        cancel_batch(strait, batch)


@req("strait.list.cursor")
@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", "12345", "2026-13-01T00:00:00Z"])
def test_a_cursor_that_is_not_a_date_time_is_400(strait: StraitClient, value: str) -> None:
    strait_error_envelope(strait.list_runs({"cursor": value}), 400, "bad_request")


@req("strait.list.dlq")
def test_dlq_lists_exactly_the_dead_lettered_runs(strait: StraitClient, strait_job: Job) -> None:
    dead = strait.start(strait_job("dead_letter"))["id"]
    failed = strait.start(strait_job("fatal"))["id"]
    done = strait.start(strait_job("complete"))["id"]
    for run_id in (dead, failed, done):
        strait.wait_for(run_id, TERMINAL)
    response = strait.list_dlq()
    status_is(response, 200)
    listed = items_of(body_of(response), "DLQ list")
    assert dead in ids(listed), "a dead_letter run is missing from the DLQ"
    assert failed not in ids(listed) and done not in ids(listed), "the DLQ lists other runs"
    assert {r["status"] for r in listed} == {"dead_letter"}
    assert {r["project_id"] for r in listed} == {strait.project_id}
    newest_first(listed)
