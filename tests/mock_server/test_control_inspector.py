"""The control routes the inspector page uses: forced outcomes of every API, each job's events,
scenario presets, the page's files, and the browser-facing headers (CORS, unbuffered streams).

Everything goes through the ASGI app on a manual clock; whatever a control route does must then
be what the API itself reports. Bad input is a JSON error body, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mock_server import scenarios
from mock_server.app import create_app
from mock_server.clock import ManualClock
from mock_server.profile import PACES, ProfileError, ServerProfile, with_pace
from mock_server.world import World
from tests.mock_server.asgi import asgi_request

AUVY_KEY = "auvy_test_acme_rw"
STRAIT_KEY = "strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1"
AVA_HEADERS = {
    "x-internal-secret": "ava_test_internal_secret",
    "x-tenant-id": "ten_acme",
    "x-user-id": "usr_1",
    "x-platform-role": "platform-admin",
}
SUMMARISE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
LONG = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"
STEP_MS = 10
PROFILE = {
    "server": {"clock": "manual"},
    "auvy": {"step_ms": STEP_MS, "start_delay_ms": 5},
    "ava": {"step_ms": STEP_MS, "start_delay_ms": 5},
    "strait": {"step_ms": STEP_MS, "start_delay_ms": 5, "second_ms": 100},
}


class Client:
    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def world(self) -> World:
        world: World = self.app.state.world
        return world

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return asgi_request(
            self.app, method, path, json=json, content=content, headers=dict(headers or {})
        )

    def control(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.request(method, "/_mock" + path, **kw)

    def advance(self, ms: int) -> None:
        assert self.control("POST", "/clock/advance", json={"ms": ms}).status_code == 200

    # -- each API, as a UI would call it ----------------------------------------------------------

    def auvy_start(self, pathway: str = SUMMARISE) -> str:
        response = self.request(
            "POST", "/auvy/v1/jobs", json={"pathway_id": pathway}, headers=_auvy()
        )
        assert response.status_code == 200, response.text
        return str(response.json()["job_id"])

    def auvy_job(self, job_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/auvy/v1/jobs/{job_id}/status", headers=_auvy())
        assert response.status_code == 200, response.text
        return dict(response.json())

    def ava_start(self, worker: str = "wkr_acme_complete") -> str:
        body = {"worker_id": worker}
        response = self.request("POST", "/ava/v1/ava/jobs", json=body, headers=AVA_HEADERS)
        assert response.status_code in (200, 201, 202), response.text
        return str(response.json()["data"]["id"])

    def ava_job(self, job_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/ava/v1/ava/jobs/{job_id}", headers=AVA_HEADERS)
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    def strait_start(self, job: str = "job_acme_long") -> str:
        response = self.request(
            "POST", f"/strait/v1/jobs/{job}/trigger", json={}, headers=_strait()
        )
        assert response.status_code in (200, 201, 202), response.text
        return str(response.json()["id"])

    def strait_run(self, run_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/strait/v1/runs/{run_id}", headers=_strait())
        assert response.status_code == 200, response.text
        return dict(response.json())

    def outcome(self, api: str, ident: str, outcome: str, **extra: Any) -> httpx.Response:
        collection = "runs" if api == "strait" else "jobs"
        body = {"outcome": outcome, **extra}
        return self.control("POST", f"/{api}/{collection}/{ident}/outcome", json=body)


def _auvy() -> dict[str, str]:
    return {"Authorization": f"Bearer {AUVY_KEY}"}


def _strait() -> dict[str, str]:
    return {"Authorization": f"Bearer {STRAIT_KEY}"}


def events(response: httpx.Response) -> list[tuple[str | None, dict[str, Any]]]:
    """(id, data) of every event frame of an event-stream body."""
    found = []
    for block in response.text.split("\n\n"):
        ident = None
        for line in block.splitlines():
            if line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                found.append((ident, json.loads(line[6:])))
    return found


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock())


@pytest.fixture
def client(app: Starlette) -> Client:
    app.state.world.reset()
    return Client(app)


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)


# --- AUVY outcomes -------------------------------------------------------------------------------


def test_auvy_timeout_fails_the_job_with_a_timeout_code(client: Client) -> None:
    job = client.auvy_start()
    client.advance(30)
    assert client.outcome("auvy", job, "timeout").status_code == 200
    status = client.auvy_job(job)
    assert (status["status"], status["failedReason"]) == ("failed", "timeout")
    stream = events(client.request("GET", f"/auvy/v1/jobs/{job}/stream", headers=_auvy()))
    assert stream[-1][1] == {"type": "error", "code": "TIMEOUT", "message": "Job timed out"}


@pytest.mark.parametrize("kind", ["approval", "questions", "input"])
def test_auvy_ask_for_input_makes_the_job_wait(client: Client, kind: str) -> None:
    job = client.auvy_start(LONG)
    client.advance(30)
    assert client.outcome("auvy", job, kind).status_code == 200
    status = client.auvy_job(job)
    assert status["status"] == "waiting"
    assert status["waitingFor"]["type"] == kind


def test_auvy_forced_approval_asks_the_given_question_and_resumes_when_approved(
    client: Client,
) -> None:
    job = client.auvy_start()  # pending: it goes through running first
    response = client.outcome("auvy", job, "approval", reason="Ship it?")
    assert response.status_code == 200, response.text
    waiting = client.auvy_job(job)["waitingFor"]
    assert waiting["prompt"] == "Ship it?"
    answer = {"action": "approve"}
    path = f"/auvy/v1/interventions/{waiting['interventionId']}/respond"
    assert client.request("POST", path, json=answer, headers=_auvy()).status_code == 200
    client.advance(1_000)
    assert client.auvy_job(job)["status"] == "completed"
    statuses = [
        d["status"]
        for _, d in events(client.request("GET", f"/auvy/v1/jobs/{job}/stream", headers=_auvy()))
        if d["type"] == "state_update"
    ]
    assert statuses[:3] == ["running", "waiting", "running"]


def test_auvy_refused_outcomes_are_json_errors(client: Client) -> None:
    job = client.auvy_start(LONG)
    client.advance(30)
    assert client.outcome("auvy", job, "approval").status_code == 200
    assert_error(client.outcome("auvy", job, "questions"), 409)  # already waiting
    assert_error(client.outcome("auvy", job, "explode"), 400)
    assert_error(client.outcome("auvy", job, "fail", reason=7), 400)
    assert_error(client.outcome("auvy", "no-such-job", "fail"), 404)
    assert client.outcome("auvy", job, "complete").status_code == 200
    assert_error(client.outcome("auvy", job, "timeout"), 409)
    assert_error(client.control("POST", f"/auvy/jobs/{job}/outcome", content=b"{nope"), 400)


# --- AVA outcomes --------------------------------------------------------------------------------


def test_ava_timeout_fails_a_queued_job_as_the_api_then_reports(client: Client) -> None:
    job = client.ava_start()
    response = client.outcome("ava", job, "timeout")
    assert response.status_code == 200, response.text
    reported = client.ava_job(job)
    assert (reported["status"], reported["error"]) == ("failed", "handler timed out")
    assert reported["started_at"] is not None


def test_ava_refused_outcomes_are_json_errors(client: Client) -> None:
    job = client.ava_start()
    assert_error(client.outcome("ava", job, "dead_letter"), 400)
    assert_error(client.outcome("ava", "job_unknown", "fail"), 404)
    assert client.outcome("ava", job, "complete").status_code == 200
    assert_error(client.outcome("ava", job, "fail"), 409)


# --- Strait outcomes -----------------------------------------------------------------------------

STRAIT_TARGETS = {
    "complete": "completed",
    "fail": "failed",
    "timeout": "timed_out",
    "crash": "crashed",
    "dead_letter": "dead_letter",
    "wait": "waiting",
}


@pytest.mark.parametrize("outcome", sorted(STRAIT_TARGETS))
def test_strait_outcome_from_queued_walks_the_table(client: Client, outcome: str) -> None:
    run = client.strait_start()
    response = client.outcome("strait", run, outcome, reason="because")
    assert response.status_code == 200, response.text
    reported = client.strait_run(run)
    assert reported["status"] == STRAIT_TARGETS[outcome]
    if outcome == "wait":
        # A live run's events never end: finish it so the in-process transport returns.
        assert client.outcome("strait", run, "complete").status_code == 200
    changes = [
        (d["from"], d["to"])
        for _, d in events(client.control("GET", f"/strait/runs/{run}/events"))
        if d["type"] == "status_change"
    ]
    assert changes[:2] == [("queued", "dequeued"), ("dequeued", "executing")]
    assert changes[2] == ("executing", STRAIT_TARGETS[outcome])
    if outcome not in ("complete", "wait"):
        assert reported["error"] == "because"


def test_strait_dead_letter_lands_in_the_dlq(client: Client) -> None:
    run = client.strait_start()
    client.advance(50)
    assert client.outcome("strait", run, "dead_letter").status_code == 200
    dlq = client.request("GET", "/strait/v1/runs/dlq?project_id=proj_acme", headers=_strait())
    assert dlq.status_code == 200, dlq.text
    body = dlq.json()
    runs = body if isinstance(body, list) else body.get("data", body.get("runs", []))
    assert run in [r["id"] for r in runs]


def test_strait_a_waiting_run_can_then_crash(client: Client) -> None:
    run = client.strait_start()
    assert client.outcome("strait", run, "wait").status_code == 200
    assert_error(client.outcome("strait", run, "wait"), 409)
    assert client.outcome("strait", run, "crash").status_code == 200
    assert client.strait_run(run)["status"] == "crashed"


def test_strait_refused_outcomes_are_json_errors(client: Client) -> None:
    run = client.strait_start()
    assert_error(client.outcome("strait", run, "approval"), 400)
    assert_error(client.outcome("strait", "01a2081b-0000-7000-8000-000000000000", "fail"), 404)
    assert_error(client.control("POST", f"/strait/runs/{run}/outcome", json=[1]), 400)
    assert client.outcome("strait", run, "complete").status_code == 200
    assert_error(client.outcome("strait", run, "fail"), 409)


def test_outcomes_lists_what_each_api_accepts(client: Client) -> None:
    body = client.control("GET", "/outcomes").json()
    assert body["auvy"] == ["complete", "fail", "timeout", "approval", "questions", "input"]
    assert body["ava"] == ["complete", "fail", "timeout"]
    assert set(body["strait"]) == set(STRAIT_TARGETS)


# --- events --------------------------------------------------------------------------------------


def test_auvy_events_are_the_api_stream_and_resume_after_an_id(client: Client) -> None:
    job = client.auvy_start()
    client.advance(1_000)
    api = events(client.request("GET", f"/auvy/v1/jobs/{job}/stream", headers=_auvy()))
    mine = events(client.control("GET", f"/auvy/jobs/{job}/events"))
    assert mine == api and mine[-1][1]["type"] == "complete"
    middle = mine[3][0]
    resumed = events(client.control("GET", f"/auvy/jobs/{job}/events?after={middle}"))
    assert resumed == mine[4:]
    assert_error(client.control("GET", f"/auvy/jobs/{job}/events?after=soon"), 400)
    assert_error(client.control("GET", "/auvy/jobs/nope/events"), 404)


def test_ava_events_are_the_job_log_and_resume_after_a_line(client: Client) -> None:
    job = client.ava_start()
    client.advance(1_000)
    lines = events(client.control("GET", f"/ava/jobs/{job}/events"))
    assert [d["type"] for _, d in lines] == ["log"] * len(lines)
    assert lines[0][0] == "0-1" and lines[-1][1]["msg"].startswith("Handler completed")
    assert events(client.control("GET", f"/ava/jobs/{job}/events?after=0-2")) == lines[2:]
    assert_error(client.control("GET", "/ava/jobs/job_nope/events"), 404)


def test_strait_events_end_with_the_run(client: Client) -> None:
    run = client.strait_start("job_acme_complete")
    client.advance(1_000)
    found = events(client.control("GET", f"/strait/runs/{run}/events"))
    assert found[-1][1]["type"] in ("event", "status_change")
    assert any(d.get("to") == "completed" for _, d in found)
    assert_error(client.control("GET", "/strait/runs/nope/events"), 404)


# --- scenarios -----------------------------------------------------------------------------------


def test_every_bundled_scenario_loads(client: Client) -> None:
    listed = client.control("GET", "/scenarios").json()["scenarios"]
    names = {s["name"] for s in listed}
    assert {"queue-backed-up", "everything-fails", "waiting-for-approval"} <= names
    for name in sorted(names):
        response = client.control("POST", f"/scenarios/{name}")
        assert response.status_code == 200, response.text
        expected = scenarios.load(scenarios.SCENARIOS / f"{name}.toml")
        created = response.json()["created"]
        for api in ("auvy", "ava", "strait"):
            wanted = sum(s.count for s in expected.starts if s.api == api)
            assert len(created[api]) == wanted, (name, api)


def test_everything_fails_fails_every_forced_job(client: Client) -> None:
    created = client.control("POST", "/scenarios/everything-fails").json()["created"]
    client.advance(5_000)
    auvy = [client.auvy_job(j)["status"] for j in created["auvy"]]
    ava = [client.ava_job(j)["status"] for j in created["ava"]]
    strait = {client.strait_run(r)["status"] for r in created["strait"]}
    assert set(auvy) == {"failed"} and set(ava) == {"failed"}
    assert strait == {"failed", "timed_out", "crashed", "dead_letter"}


def test_waiting_for_approval_leaves_people_something_to_answer(client: Client) -> None:
    created = client.control("POST", "/scenarios/waiting-for-approval").json()["created"]
    client.advance(2_000)
    kinds = sorted(client.auvy_job(j)["waitingFor"]["type"] for j in created["auvy"])
    assert kinds == ["approval", "approval", "approval", "input", "questions"]


def test_queue_backed_up_keeps_jobs_queued(client: Client) -> None:
    created = client.control("POST", "/scenarios/queue-backed-up").json()["created"]
    client.advance(200)
    # The queue tenant's jobs are invisible to acme's headers: read every tenant's list.
    listed = {j["id"]: j["status"] for j in client.control("GET", "/ava/jobs").json()["jobs"]}
    ava = [listed[j] for j in created["ava"]]
    assert ava.count("queued") >= 10
    strait = [client.strait_run(r)["status"] for r in created["strait"]]
    assert strait.count("delayed") == 6


def test_loading_a_scenario_resets_the_world_first(client: Client) -> None:
    before = client.auvy_start()
    client.control("POST", "/scenarios/everything-fails")
    assert client.world.auvy.jobs.get(before) is None


def test_a_posted_scenario_is_checked_before_anything_changes(client: Client) -> None:
    kept = client.auvy_start()
    bad = [
        {"toml": "title = 'x'\n[[auvy]]\npathway = 'no-such-pathway'\n"},
        {"toml": "title = 'x'\nsurprise = 1\n"},
        {"toml": "[[ava]]\nworker = 'wkr_acme_complete'\noutcome = 'crash'\n"},
        {"toml": "[[strait]]\njob = 'job_acme_long'\ncount = 0\n"},
        {"toml": "not toml at all ["},
        {"toml": 3},
    ]
    for body in bad:
        assert_error(client.control("POST", "/scenarios", json=body), 400)
    assert client.world.auvy.jobs.get(kept) is not None
    assert_error(client.control("POST", "/scenarios/nope"), 404)
    good = "reset = false\n[[ava]]\nworker = 'wkr_acme_complete'\ncount = 2\npriority = 1\n"
    response = client.control("POST", "/scenarios", json={"toml": good, "name": "mine"})
    assert response.status_code == 200, response.text
    assert response.json()["scenario"] == "mine" and len(response.json()["created"]["ava"]) == 2
    assert client.world.auvy.jobs.get(kept) is not None


def test_find_resolves_names_and_paths() -> None:
    assert scenarios.find("everything-fails").name == "everything-fails.toml"
    path = scenarios.SCENARIOS / "queue-backed-up.toml"
    assert scenarios.find(str(path)) == path
    with pytest.raises(scenarios.ScenarioError, match="bundled: "):
        scenarios.find("../../etc/passwd")


# --- the page and the browser-facing headers -----------------------------------------------------


def test_the_inspector_page_is_served_without_internet_assets(client: Client) -> None:
    assert client.control("GET", "/inspector").headers["location"] == "inspector/"
    assert client.control("GET", "/").headers["location"] == "inspector/"
    for name, kind in (
        ("", "text/html"),
        ("inspector.js", "javascript"),
        ("inspector.css", "text/css"),
    ):
        response = client.control("GET", f"/inspector/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert "http://" not in response.text and "https://" not in response.text


def test_preflight_allows_authorization_from_another_origin(client: Client) -> None:
    headers = {
        "Origin": "http://127.0.0.1:5173",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    for path in ("/auvy/v1/jobs", "/ava/v1/ava/jobs", "/strait/v1/jobs/x/trigger", "/_mock/reset"):
        response = client.request("OPTIONS", path, headers=headers)
        assert response.status_code == 200, path
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert response.headers["access-control-allow-origin"] in ("*", headers["Origin"])


def test_streams_are_never_buffered_or_compressed(client: Client) -> None:
    job = client.auvy_start()
    client.advance(1_000)
    headers = {**_auvy(), "Origin": "http://127.0.0.1:5173", "Accept-Encoding": "gzip, br"}
    response = client.request("GET", f"/auvy/v1/jobs/{job}/stream", headers=headers)
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in response.headers
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-stream-truncated" in response.headers["access-control-expose-headers"].lower()


# --- pace ----------------------------------------------------------------------------------------


def test_pace_overrides_every_api() -> None:
    profile = ServerProfile.from_dict({})
    for pace, (step, delay) in PACES.items():
        paced = with_pace(profile, pace)
        for settings in (paced.auvy, paced.ava, paced.strait):
            assert (settings.step_ms, settings.start_delay_ms) == (step, delay)
    assert PACES["instant"][0] < PACES["human"][0] < PACES["slow"][0]
    with pytest.raises(ProfileError, match="unknown pace"):
        with_pace(profile, "ludicrous")


# --- the command line ----------------------------------------------------------------------------


def test_pace_and_scenario_options() -> None:
    from mock_server.cli import parse_args

    args = parse_args(["--pace", "slow", "--scenario", "everything-fails", "--scenario", "x.toml"])
    assert (args.pace, args.scenario) == ("slow", ["everything-fails", "x.toml"])
    assert parse_args([]).pace is None


def test_an_unknown_scenario_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from mock_server.cli import main

    assert main(["--scenario", "no-such-preset", "--port", "0"]) == 2
    assert "no scenario 'no-such-preset'" in capsys.readouterr().err
