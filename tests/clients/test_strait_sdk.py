"""The official Strait SDK (strait-python 0.1.1, a dev dependency) against the strait-live wire.

Every SDK method whose route openapi/strait.yaml has is driven against the reference server
started with `--variant strait-live`, through the synchronous `Client` and the `AsyncClient`.
Where the SDK itself is at fault (its route, method or field differs from both the document and
the live system, or it cannot send what the route requires) the test asserts what the SDK should
do, marked xfail(strict=True) with the defect the README lists: a fixed SDK turns it into an
XPASS, which fails the run until the mark and the README line go.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from strait import ApiError, AsyncClient, Client, NotFoundError, StraitError
from strait.composition import (
    PaginatedQuery,
    PaginatedResponse,
    WaitForRunOptions,
    collect_all,
    paginate,
    wait_for_run,
)

from conformance.server import ReferenceServer
from mock_server.profile import FIXTURES

CI_PROFILE = FIXTURES / "server" / "ci.toml"
PROJECT = "proj_acme"
KEY = "strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1"
LATER = "2099-01-01T00:00:00Z"
TERMINAL = {"completed", "failed", "timed_out", "crashed", "system_failed", "canceled"}
TERMINAL |= {"expired", "dead_letter"}
WAIT = WaitForRunOptions(timeout_ms=20_000, initial_delay_ms=20, max_delay_ms=200)

Call = Callable[..., Any]


class Sdk:
    """One SDK flavour behind the same synchronous surface: `sdk.runs.get(id)` and friends."""

    def __init__(self, flavour: str, base_url: str) -> None:
        self.flavour = flavour
        self.base_url = base_url
        self.client = Client(base_url=base_url, api_key=KEY)

    def service(self, name: str) -> Any:
        if self.flavour == "sync":
            return getattr(self.client, name)
        return _Blocking(self.base_url, name)

    @property
    def runs(self) -> Any:
        return self.service("runs")

    @property
    def jobs(self) -> Any:
        return self.service("jobs")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The SDK's own generic request: what a user falls back on around a defect."""
        if self.flavour == "sync":
            return self.client.do_request(method, path, **kwargs)

        async def once() -> Any:
            async with AsyncClient(base_url=self.base_url, api_key=KEY) as client:
                return await client.do_request(method, path, **kwargs)

        return asyncio.run(once())


class _Blocking:
    """An AsyncClient service whose methods run to completion: a client per call, because an
    httpx.AsyncClient's connections belong to the event loop that opened them."""

    def __init__(self, base_url: str, service: str) -> None:
        self.base_url = base_url
        self.name = service

    def __getattr__(self, method: str) -> Call:
        def call(*args: Any, **kwargs: Any) -> Any:
            async def once() -> Any:
                async with AsyncClient(base_url=self.base_url, api_key=KEY) as client:
                    return await getattr(getattr(client, self.name), method)(*args, **kwargs)

            return asyncio.run(once())

        return call


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ReferenceServer(CI_PROFILE, extra_args=("--variant", "strait-live")) as server:
        # The SDK appends /v1/...; the reference server mounts Strait under /strait.
        yield f"{server.url}/strait"


@pytest.fixture(params=["sync", "async"])
def sdk(request: pytest.FixtureRequest, base_url: str) -> Iterator[Sdk]:
    client = Sdk(request.param, base_url)
    yield client
    client.client.close()


def batch() -> str:
    return f"sdk-{uuid.uuid4().hex[:12]}"


def trigger(sdk: Sdk, job: str, **body: Any) -> dict[str, Any]:
    run: dict[str, Any] = sdk.jobs.trigger(job, {"payload": {"n": uuid.uuid4().hex}, **body})
    return run


def settled(sdk: Sdk, run_id: str, statuses: set[str] = TERMINAL) -> dict[str, Any]:
    """The SDK's own poller, until the run reaches one of `statuses`."""
    opts = WaitForRunOptions(**{**vars(WAIT), "is_terminal": statuses.__contains__})
    run: dict[str, Any] = wait_for_run(sdk.runs.get, lambda r: r["status"], run_id, opts)
    return run


def held(sdk: Sdk, job: str = "job_acme_complete", **body: Any) -> dict[str, Any]:
    return trigger(sdk, job, scheduled_at=LATER, **body)


# --- trigger, get, list ---------------------------------------------------------------------


def test_trigger_get_and_wait(sdk: Sdk) -> None:
    run = trigger(sdk, "job_acme_complete")
    assert run["status"] in {"queued", "dequeued", "executing"}
    got = sdk.runs.get(run["id"])
    assert got["id"] == run["id"] and got["job_id"] == "job_acme_complete"
    done = settled(sdk, run["id"])
    assert done["status"] == "completed" and done["result"]["summary"] == "done"
    assert done["finished_at"]


@pytest.mark.xfail(
    strict=True,
    reason="SDK defect: its Run model reads completed_at; the document and the live system "
    "send finished_at (README, Strait SDK)",
    raises=AssertionError,
)
def test_a_finished_run_has_the_sdk_models_completed_at(sdk: Sdk) -> None:
    done = settled(sdk, trigger(sdk, "job_acme_complete")["id"])
    assert done.get("completed_at") == done["finished_at"]


def test_runs_list_is_a_page_the_sdk_paginates(sdk: Sdk) -> None:
    mine = batch()
    made = [held(sdk, batch_id=mine)["id"] for _ in range(5)]
    first = sdk.runs.list(query={"project_id": PROJECT, "batch_id": mine, "limit": "2"})
    assert set(first) >= {"data", "next_cursor", "has_more"} and first["has_more"] is True

    def page(q: PaginatedQuery) -> PaginatedResponse[dict[str, Any]]:
        query = {"project_id": PROJECT, "batch_id": mine, "limit": str(q.limit)}
        if q.cursor:
            query["cursor"] = q.cursor
        body = sdk.runs.list(query=query)
        return PaginatedResponse(
            data=body["data"], next_cursor=body["next_cursor"] or "", has_more=body["has_more"]
        )

    walked = [r["id"] for r in collect_all(paginate(page, limit=2))]
    assert walked == list(reversed(made)), "not every run once, newest first"
    sdk.request("POST", "/v1/runs/bulk-cancel", body={"run_ids": made})


def test_runs_get_dlq(sdk: Sdk) -> None:
    run = trigger(sdk, "job_acme_always_fail")
    settled(sdk, run["id"], {"dead_letter"})
    page = sdk.runs.get_dlq(query={"project_id": PROJECT})
    assert run["id"] in [r["id"] for r in page["data"]]
    assert all(r["status"] == "dead_letter" for r in page["data"])


def test_an_unknown_run_is_the_sdks_not_found(sdk: Sdk) -> None:
    with pytest.raises(NotFoundError) as caught:
        sdk.runs.get(str(uuid.uuid4()))
    assert caught.value.status == 404
    assert caught.value.body["error"]["code"] == "not_found"


@pytest.mark.xfail(
    strict=True,
    reason="SDK defect: it takes the message from a top-level `message`, not from FACTS.md's "
    '{"error": {"code", "message"}} envelope, and says "HTTP 404: GET ..." (README, Strait SDK)',
    raises=AssertionError,
)
def test_an_error_carries_the_servers_message(sdk: Sdk) -> None:
    with pytest.raises(StraitError) as caught:
        sdk.runs.get(str(uuid.uuid4()))
    assert str(caught.value) == "run not found"


# --- cancel, replay, dlq-replay, reschedule -------------------------------------------------


def test_runs_delete_answers_the_canceled_run(sdk: Sdk) -> None:
    run = held(sdk)
    canceled = sdk.runs.delete(run["id"])
    assert canceled["id"] == run["id"] and canceled["status"] == "canceled"
    assert sdk.runs.get(run["id"])["status"] == "canceled"


def test_runs_replay_of_a_failed_run(sdk: Sdk) -> None:
    failed = settled(sdk, trigger(sdk, "job_acme_fatal")["id"])
    assert failed["status"] == "failed"
    again = sdk.runs.replay(failed["id"])
    assert again["id"] != failed["id"] and again["attempt"] == 1
    assert again["payload"] == failed["payload"] and again["triggered_by"] == "manual"


def test_runs_dlq_replay_in_place(sdk: Sdk) -> None:
    dead = settled(sdk, trigger(sdk, "job_acme_always_fail")["id"], {"dead_letter"})
    back = sdk.runs.dlq_replay(dead["id"])
    assert back["id"] == dead["id"] and back["attempt"] == 1
    assert back["status"] in {"queued", "dequeued", "executing", "failed", "dead_letter"}


def test_runs_reschedule(sdk: Sdk) -> None:
    run = held(sdk)
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    moved = sdk.runs.reschedule(run["id"], {"scheduled_at": soon})
    assert moved["status"] == "delayed" and moved["scheduled_at"] == soon
    now = sdk.runs.reschedule(run["id"], {"scheduled_at": "2000-01-01T00:00:00Z"})
    assert now["status"] in {"queued", "dequeued", "executing", "completed"}


def test_runs_delete_idempotency_key(sdk: Sdk) -> None:
    done = settled(sdk, trigger(sdk, "job_acme_complete")["id"])
    assert sdk.runs.delete_idempotency_key(done["id"]) == {"status": "reset", "run_id": done["id"]}


def test_a_paused_run_reads_paused(sdk: Sdk, base_url: str) -> None:
    # The SDK has no pause method; the live wire's `paused` is what its get then reads.
    run = settled(sdk, trigger(sdk, "job_acme_long")["id"], {"executing"})
    sdk.request("POST", f"/v1/runs/{run['id']}/pause")
    assert sdk.runs.get(run["id"])["status"] == "paused"
    sdk.runs.delete(run["id"])


# --- bulk -----------------------------------------------------------------------------------


def test_runs_bulk_cancel(sdk: Sdk) -> None:
    live, done = held(sdk), settled(sdk, trigger(sdk, "job_acme_complete")["id"])
    answer = sdk.runs.bulk_cancel({"run_ids": [live["id"], done["id"]]})
    assert (answer["total"], answer["canceled"], answer["failed"]) == (2, 1, 1)
    errors = {r["id"]: r.get("error") for r in answer["results"]}
    assert errors[live["id"]] in (None, "") and errors[done["id"]]


@pytest.mark.xfail(
    strict=True,
    reason="SDK difference: bulk_cancel_all(body) cannot send the project_id query the document "
    "requires (the live system takes the project from the key; FACTS.md does not record it), so "
    "the server answers 400 (README, Strait SDK)",
    raises=ApiError,
)
def test_runs_bulk_cancel_all(sdk: Sdk) -> None:
    mine = batch()
    run = held(sdk, batch_id=mine)
    try:
        answer = sdk.runs.bulk_cancel_all({"batch_id": mine})
        assert answer["canceled"] == 1
    finally:
        sdk.runs.delete(run["id"])


def test_bulk_cancel_all_through_the_sdks_generic_request(sdk: Sdk) -> None:
    mine = batch()
    runs = [held(sdk, batch_id=mine)["id"] for _ in range(2)]
    answer = sdk.request(
        "POST", "/v1/runs/bulk-cancel-all", query={"project_id": PROJECT}, body={"batch_id": mine}
    )
    assert sorted(r["id"] for r in answer["results"]) == sorted(runs)
    assert answer["canceled"] == 2


def test_runs_bulk_replay(sdk: Sdk) -> None:
    failed = [settled(sdk, trigger(sdk, "job_acme_fatal")["id"]) for _ in range(2)]
    replayed = sdk.runs.bulk_replay({"run_ids": [r["id"] for r in failed]})
    # The document's plain array (the SDK annotates a dict but hands back what it gets).
    assert isinstance(replayed, list) and len(replayed) == 2
    assert {r["payload"]["n"] for r in replayed} == {r["payload"]["n"] for r in failed}


def test_runs_bulk_dlq_replay(sdk: Sdk) -> None:
    dead = settled(sdk, trigger(sdk, "job_acme_always_fail")["id"], {"dead_letter"})
    answer = sdk.runs.bulk_dlq_replay({"run_ids": [dead["id"]]})
    assert answer["count"] == 1 and answer["replayed"][0]["id"] == dead["id"]


# --- what a run recorded ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "list_events",
        "list_checkpoints",
        "list_outputs",
        "list_tool_calls",
        "get_usage",
        "get_children",
        "get_lineage",
    ],
)
def test_a_runs_records(sdk: Sdk, method: str) -> None:
    done = settled(sdk, trigger(sdk, "job_acme_complete")["id"])
    found = getattr(sdk.runs, method)(done["id"])
    assert isinstance(found, list), f"{method} answered {type(found).__name__}"
    if method == "list_events":
        assert found, "a completed run recorded no event"
    if method == "get_lineage":
        assert [r["id"] for r in found] == [done["id"]]


def test_runs_get_debug_bundle(sdk: Sdk) -> None:
    done = settled(sdk, trigger(sdk, "job_acme_complete")["id"])
    bundle = sdk.runs.get_debug_bundle(done["id"])
    assert bundle["run"]["id"] == done["id"] and isinstance(bundle["events"], list)


@pytest.mark.xfail(
    strict=True,
    reason="SDK defect: runs.debug sends GET /v1/runs/{id}/debug; the document and the live "
    "system have POST with {debug_mode}, so the server answers 405 (README, Strait SDK)",
    raises=ApiError,
)
def test_runs_debug(sdk: Sdk) -> None:
    run = held(sdk)
    try:
        sdk.runs.debug(run["id"])
        assert sdk.runs.get(run["id"])["debug_mode"] is True
    finally:
        sdk.runs.delete(run["id"])


def test_debug_mode_through_the_sdks_generic_request(sdk: Sdk) -> None:
    run = held(sdk)
    assert sdk.request("POST", f"/v1/runs/{run['id']}/debug", body={"debug_mode": True}) == {}
    assert sdk.runs.get(run["id"])["debug_mode"] is True
    sdk.runs.delete(run["id"])


@pytest.mark.xfail(
    strict=True,
    reason="SDK defect: list_dependency_status calls /v1/runs/{id}/dependencies; the document "
    "and the live system serve /dependency-status, so the server answers 404 (README, Strait SDK)",
    raises=NotFoundError,
)
def test_runs_list_dependency_status(sdk: Sdk) -> None:
    run = held(sdk)
    try:
        status = sdk.runs.list_dependency_status(run["id"])
        assert status["run_id"] == run["id"]
    finally:
        sdk.runs.delete(run["id"])


def test_dependency_status_through_the_sdks_generic_request(sdk: Sdk) -> None:
    run = held(sdk)
    status = sdk.request("GET", f"/v1/runs/{run['id']}/dependency-status")
    assert status["run_id"] == run["id"] and status["dependencies_satisfied"] is True
    sdk.runs.delete(run["id"])


def test_the_sdk_defects_are_what_the_server_answers(base_url: str) -> None:
    """The xfails above fail for the reason they give, not for another: the exact answers."""
    run = httpx.post(
        f"{base_url}/v1/jobs/job_acme_complete/trigger",
        json={"scheduled_at": LATER},
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()
    auth = {"Authorization": f"Bearer {KEY}"}
    debug = httpx.get(f"{base_url}/v1/runs/{run['id']}/debug", headers=auth)
    assert debug.status_code == 405 and debug.json()["error"]["code"] == "method_not_allowed"
    deps = httpx.get(f"{base_url}/v1/runs/{run['id']}/dependencies", headers=auth)
    assert deps.status_code == 404 and deps.json()["error"]["code"] == "not_found"
    everything = httpx.post(
        f"{base_url}/v1/runs/bulk-cancel-all", json={"job_id": "job_acme_complete"}, headers=auth
    )
    assert everything.status_code == 400 and "project_id" in everything.text
    httpx.delete(f"{base_url}/v1/runs/{run['id']}", headers=auth)
