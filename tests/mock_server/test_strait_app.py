"""Strait through the whole ASGI app, over an in-process transport, on a manual clock.

Every response is checked against openapi/strait.yaml by the conformance suite's own checker;
every error must be the Strait envelope with the right status and code, and a refused request
must leave the run as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.app import create_app
from mock_server.clock import ManualClock, iso
from mock_server.errors import RequestError
from mock_server.profile import ServerProfile
from mock_server.world import World
from tests.mock_server.asgi import UNSET, asgi_request

ACME = "strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1"
GLOBEX = "strait_a8002ead2c8261875226792ca4c6b687899afb7c0f9dc1fa362077b190f08ad1"
STEP_MS, SECOND_MS = 10, 100
PROFILE = {
    "server": {"clock": "manual"},
    "strait": {"step_ms": STEP_MS, "start_delay_ms": 5, "second_ms": SECOND_MS},
}
_UNSET = UNSET


class Client:
    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def world(self) -> World:
        world: World = self.app.state.world
        return world

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = ACME,
        json: Any = _UNSET,
        content: bytes | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        response = asgi_request(
            self.app,
            method,
            "/strait" + path,
            headers=sent,
            json=json,
            content=content,
            params=params,
        )
        conforms(self.world, response)
        return response

    def advance(self, ms: int) -> None:
        self.world.engine.clock.advance(ms)
        self.world.engine.run_due()

    def trigger(self, job: str = "job_acme_complete", **body: Any) -> dict[str, Any]:
        response = self.call("POST", f"/v1/jobs/{job}/trigger", json=body)
        assert response.status_code == 201, response.text
        record: dict[str, Any] = response.json()
        return record

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()
        return record

    def settle(self, run_id: str, status: str, limit_ms: int = 20_000) -> dict[str, Any]:
        for _ in range(limit_ms // STEP_MS):
            if self.run(run_id)["status"] == status:
                return self.run(run_id)
            self.advance(STEP_MS)
        raise AssertionError(f"run {run_id} never became {status}: {self.run(run_id)}")


def conforms(world: World, response: httpx.Response) -> None:
    path = response.request.url.path.removeprefix("/strait")
    try:
        operation, _ = world.specs["strait"].match(response.request.method, path)
    except RequestError:
        return
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    body = response.json() if response.content else None
    ResponseSpec.for_api("strait").check(
        operation.operation_id, response.status_code, response.headers, body
    )


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) <= {"error", "request_id"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock(), apis=["strait"])


@pytest.fixture
def client(app: Starlette) -> Client:
    app.state.world.reset()
    return Client(app)


# --- authentication and scoping ---------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "nope", "strait_" + "0" * 64])
def test_bad_keys_are_401(client: Client, key: str | None) -> None:
    response = client.call("GET", "/v1/runs", key=key, params={"project_id": "proj_acme"})
    error(response, 401, "authentication_required")


def test_another_projects_run_is_404_run_not_found(client: Client) -> None:
    run = client.trigger()
    for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/replay"), ("GET", "/events")]:
        response = client.call(method, f"/v1/runs/{run['id']}{suffix}", key=GLOBEX)
        assert error(response, 404, "not_found") == "run not found"
    assert client.run(run["id"])["status"] == "queued"


def test_another_projects_job_and_project_are_404(client: Client) -> None:
    error(client.call("POST", "/v1/jobs/job_globex_complete/trigger", json={}), 404, "not_found")
    error(client.call("GET", "/v1/runs", params={"project_id": "proj_globex"}), 404, "not_found")
    error(client.call("GET", "/v1/runs/dlq", params={"project_id": "nope"}), 404, "not_found")


def test_unknown_route_and_method_use_the_envelope(client: Client) -> None:
    error(client.call("GET", "/v1/nothing"), 404, "not_found")
    error(client.call("PUT", "/v1/runs/dlq"), 405, "method_not_allowed")


# --- trigger -----------------------------------------------------------------------------------


def test_trigger_validation_errors_are_400(client: Client) -> None:
    path = "/v1/jobs/job_acme_complete/trigger"
    error(client.call("POST", path, json={"priority": 11}), 400, "bad_request")
    error(client.call("POST", path, json={"payload": []}), 400, "bad_request")
    error(client.call("POST", path, json={"scheduled_at": "soon"}), 400, "bad_request")
    error(
        client.call("POST", path, json={"scheduled_at": "2026-13-01T00:00:00Z"}), 400, "bad_request"
    )
    error(
        client.call("POST", path, content=b"{", headers={"content-type": "application/json"}),
        400,
        "bad_request",
    )
    long_key = {"Idempotency-Key": "k" * 257}
    error(client.call("POST", path, json={}, headers=long_key), 400, "bad_request")


def test_idempotency_key_hit_then_reset(client: Client) -> None:
    path = "/v1/jobs/job_acme_long/trigger"
    first = client.call("POST", path, json={}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = client.call("POST", path, json={}, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["idempotency_hit"] is True
    run_id = first.json()["id"]
    client.settle(run_id, "executing")
    error(client.call("DELETE", f"/v1/runs/{run_id}/idempotency-key"), 409, "conflict")
    client.call("DELETE", f"/v1/runs/{run_id}")
    reset = client.call("DELETE", f"/v1/runs/{run_id}/idempotency-key")
    assert reset.json() == {"status": "reset", "run_id": run_id}
    assert client.run(run_id)["idempotency_key"] is None
    third = client.call("POST", path, json={}, headers={"Idempotency-Key": "k1"})
    assert third.status_code == 201 and third.json()["id"] != run_id


# --- lifecycle ---------------------------------------------------------------------------------


def test_a_run_walks_queued_dequeued_executing_completed(client: Client) -> None:
    run = client.trigger(payload={"a": 1})
    assert run["status"] == "queued" and run["attempt"] == 1
    client.settle(run["id"], "dequeued")
    client.settle(run["id"], "executing")
    done = client.settle(run["id"], "completed")
    assert done["result"] == {"summary": "done", "attempt": 1}
    assert done["execution_trace"]["total_ms"] is not None
    for suffix in ("checkpoints", "usage", "tool-calls", "outputs"):
        assert client.call("GET", f"/v1/runs/{run['id']}/{suffix}").json(), suffix
    bundle = client.call("GET", f"/v1/runs/{run['id']}/debug-bundle").json()
    assert bundle["events"] == client.call("GET", f"/v1/runs/{run['id']}/events").json()
    error(client.call("GET", f"/v1/runs/{run['id']}/stream"), 410, "gone")
    error(client.call("GET", f"/v1/runs/{run['id']}/stream/chunks"), 410, "gone")


def test_retries_then_dead_letter_then_dlq_replay(client: Client) -> None:
    run = client.trigger("job_acme_always_fail")
    client.settle(run["id"], "executing")
    for _ in range(100):
        retrying = client.run(run["id"])
        if retrying["attempt"] == 2:
            break
        client.advance(STEP_MS)
    assert retrying["status"] == "queued" and retrying["next_retry_at"] is not None
    dead = client.settle(run["id"], "dead_letter")
    assert dead["attempt"] == 2 and dead["error"]
    dlq = client.call("GET", "/v1/runs/dlq", params={"project_id": "proj_acme"}).json()
    assert [r["id"] for r in dlq] == [run["id"]]
    error(client.call("POST", f"/v1/runs/{run['id']}/replay"), 400, "bad_request")
    again = client.call("POST", f"/v1/runs/{run['id']}/dlq-replay")
    assert again.status_code == 200
    assert again.json()["id"] == run["id"] and again.json()["status"] == "queued"
    assert again.json()["attempt"] == 1
    error(client.call("POST", f"/v1/runs/{run['id']}/dlq-replay"), 409, "conflict")


def test_replay_makes_a_new_run(client: Client) -> None:
    run = client.trigger("job_acme_fatal", payload={"x": 1})
    client.settle(run["id"], "failed")
    response = client.call("POST", f"/v1/runs/{run['id']}/replay")
    assert response.status_code == 201
    new = response.json()
    assert new["id"] != run["id"] and new["payload"] == {"x": 1} and new["attempt"] == 1
    assert new["triggered_by"] == "manual"


def test_cancel_terminal_is_400_and_changes_nothing(client: Client) -> None:
    run = client.trigger()
    assert client.call("DELETE", f"/v1/runs/{run['id']}").status_code == 204
    before = client.run(run["id"])
    assert before["status"] == "canceled"
    message = error(client.call("DELETE", f"/v1/runs/{run['id']}"), 400, "bad_request")
    assert message == "run already in terminal state"
    assert client.run(run["id"]) == before


def test_pause_resume_restart_from_the_wrong_state_are_409(client: Client) -> None:
    run = client.trigger("job_acme_long")
    for action in ("pause", "resume", "restart"):
        error(client.call("POST", f"/v1/runs/{run['id']}/{action}"), 409, "conflict")
    client.settle(run["id"], "executing")
    paused = client.call("POST", f"/v1/runs/{run['id']}/pause").json()
    assert paused["status"] == "waiting"
    assert client.call("GET", f"/v1/runs/{run['id']}/state").json()["paused"] is True
    error(client.call("POST", f"/v1/runs/{run['id']}/pause"), 409, "conflict")
    assert client.call("POST", f"/v1/runs/{run['id']}/resume").json()["status"] == "queued"
    client.settle(run["id"], "executing")
    restarted = client.call("POST", f"/v1/runs/{run['id']}/restart", json={"machine_preset": "l"})
    assert restarted.json()["status"] == "queued" and restarted.json()["id"] == run["id"]


def test_reschedule(client: Client) -> None:
    now = client.world.engine.now()
    run = client.trigger(scheduled_at=iso(now + 60_000))
    assert run["status"] == "delayed"
    path = f"/v1/runs/{run['id']}/reschedule"
    error(client.call("POST", path, json={}), 422, "validation_failed")
    error(client.call("POST", path, json={"scheduled_at": "x"}), 400, "bad_request")
    later = client.call("POST", path, json={"scheduled_at": iso(now + 120_000)}).json()
    assert later["status"] == "delayed"
    assert client.call("POST", path, json={"scheduled_at": iso(now)}).json()["status"] == "queued"
    client.settle(run["id"], "completed")
    error(client.call("POST", path, json={"scheduled_at": iso(now)}), 409, "conflict")


def test_list_parameters_are_validated(client: Client) -> None:
    base = {"project_id": "proj_acme"}
    for extra in (
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "x"},
        {"cursor": "yesterday"},
        {"status": "paused"},
        {"triggered_by": "robot"},
        {"payload_contains": "[1]"},
        {"payload_contains": "{nope"},
        {"metadata_value": "v"},
    ):
        error(client.call("GET", "/v1/runs", params={**base, **extra}), 400, "bad_request")
    error(client.call("GET", "/v1/runs"), 400, "bad_request")


def test_list_filters_and_cursor(client: Client) -> None:
    ids = [
        client.trigger(
            batch_id="b1", payload={"n": n, "tags": ["x", "y"]}, metadata={"k": str(n % 2)}
        )["id"]
        for n in range(5)
    ]
    base = {"project_id": "proj_acme", "batch_id": "b1"}
    first = client.call("GET", "/v1/runs", params={**base, "limit": "2"}).json()
    assert [r["id"] for r in first] == ids[::-1][:2]
    rest = client.call("GET", "/v1/runs", params={**base, "cursor": first[-1]["created_at"]}).json()
    assert [r["id"] for r in rest] == ids[::-1][2:]
    odd = client.call(
        "GET", "/v1/runs", params={**base, "metadata_key": "k", "metadata_value": "1"}
    ).json()
    assert sorted(r["id"] for r in odd) == sorted([ids[1], ids[3]])
    contains = client.call(
        "GET", "/v1/runs", params={**base, "payload_contains": '{"tags": ["y"], "n": 2}'}
    ).json()
    assert [r["id"] for r in contains] == [ids[2]]


def test_bulk_operations(client: Client) -> None:
    live = client.trigger("job_acme_long")["id"]
    done = client.trigger()["id"]
    client.settle(done, "completed")
    result = client.call("POST", "/v1/runs/bulk-cancel", json={"run_ids": [live, done, "zz"]})
    body = result.json()
    assert body["total"] == 3 and body["canceled"] == 1 and body["failed"] == 2
    assert [r["status"] for r in body["results"]] == ["canceled", "completed", "not_found"]
    error(client.call("POST", "/v1/runs/bulk-cancel", json={"run_ids": []}), 400, "bad_request")
    error(
        client.call(
            "POST", "/v1/runs/bulk-cancel-all", params={"project_id": "proj_acme"}, json={}
        ),
        400,
        "bad_request",
    )
    error(client.call("POST", "/v1/runs/bulk-replay", json={"run_ids": [done]}), 400, "bad_request")
    error(client.call("POST", "/v1/runs/bulk-dlq-replay", json={}), 400, "bad_request")
    error(
        client.call("POST", "/v1/runs/bulk-dlq-replay", json={"run_ids": [done]}), 409, "conflict"
    )


def test_children_lineage_dependencies(client: Client) -> None:
    parent = client.trigger("job_acme_spawn")
    client.settle(parent["id"], "completed")
    children = client.call("GET", f"/v1/runs/{parent['id']}/children").json()
    assert len(children) == 2 and {c["status"] for c in children} == {"completed"}
    assert {c["triggered_by"] for c in children} == {"spawn"}
    first = client.trigger("job_acme_continue")
    client.settle(first["id"], "completed")
    client.advance(1_000)
    chain = client.call("GET", f"/v1/runs/{first['id']}/lineage").json()
    assert [r["lineage_depth"] for r in chain] == [0, 1, 2]
    assert chain[1]["continuation_of"] == first["id"]
    dep = client.trigger("job_acme_dependent")
    status = client.call("GET", f"/v1/runs/{dep['id']}/dependency-status").json()
    assert status["dependencies"][0]["depends_on_job_id"] == "job_acme_complete"
    assert status["dependencies_satisfied"] is False


def test_debug_mode(client: Client) -> None:
    run = client.trigger()
    assert client.call("POST", f"/v1/runs/{run['id']}/debug", json={}).status_code == 204
    assert client.run(run["id"])["debug_mode"] is True
    client.call("POST", f"/v1/runs/{run['id']}/debug", json={"debug_mode": False})
    assert client.run(run["id"])["debug_mode"] is False
    error(
        client.call("POST", f"/v1/runs/{run['id']}/debug", json={"debug_mode": "yes"}),
        400,
        "bad_request",
    )
