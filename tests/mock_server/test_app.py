"""The whole ASGI app over an in-process transport, on a manual clock.

Every response of an AUVY operation is checked against openapi/auvy.yaml (documented status,
required headers, content type, body schema) by the conformance suite's own checker; every refused
request must leave the job exactly as it was (status and event count).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.app import create_app
from mock_server.clock import ManualClock
from mock_server.errors import RequestError
from mock_server.model.auvy import JobStatus
from mock_server.profile import ServerProfile
from mock_server.world import World
from tests.mock_server.asgi import UNSET, asgi_request

ACME = "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01"
GLOBEX = "7b2d4e61-1c3f-4a5b-8e9d-0f1a2b3c4d02"
INITECH = "c4a9e2f0-5d6b-4e7c-9a81-2b3c4d5e6f03"

MAIN = "auvy_test_acme_rw"
READ_ONLY = "auvy_test_acme_ro"
OTHER = "auvy_test_globex_rw"
TRIAL_EXPIRED = "auvy_test_initech_rw"
COST_CAP = "auvy_test_umbrella_rw"

COMPLETE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
FAIL = "1c8f2a4b-3d5e-4f6a-9b0c-2d3e4f5a6b11"
APPROVAL = "2d9a3b5c-4e6f-4a7b-8c1d-3e4f5a6b7c12"
INPUT = "3e0b4c6d-5f7a-4b8c-9d2e-4f5a6b7c8d13"
QUESTIONS = "4f1c5d7e-6a8b-4c9d-8e3f-5a6b7c8d9e14"
LONG = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"
PAUSE = "6b3e7f9a-8c0d-4e1f-8a5b-7c8d9e0f1a16"
OTHER_PATHWAY = "7c4f8a0b-9d1e-4f2a-9b6c-8d9e0f1a2b17"
TRACE = "trc_acme_support_0001"
OTHER_TRACE = "trc_globex_0001"
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"

STEP_MS = 10
SETTLE_MS = 1_000
PROFILE = {"server": {"clock": "manual"}, "auvy": {"step_ms": STEP_MS, "start_delay_ms": 5}}
_UNSET = UNSET


class Client:
    """A synchronous client over httpx's ASGI transport (one event loop per request)."""

    def __init__(self, app: Starlette, prefix: str = "/auvy") -> None:
        self.app = app
        self.prefix = prefix

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = MAIN,
        json: Any = _UNSET,
        content: bytes | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return asgi_request(
            self.app, method, path, headers=sent, json=json, content=content, params=params
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.request(method, self.prefix + path, **kwargs)
        conforms_to_the_document(self.app, response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.api("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.api("POST", path, **kwargs)

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.request(method, "/_mock" + path, key=None, **kwargs)

    def advance(self, ms: int) -> None:
        assert self.control("POST", "/clock/advance", json={"ms": ms}).status_code == 200

    def start(self, pathway: str, key: str = MAIN, **body: Any) -> str:
        response = self.post("/v1/jobs", key=key, json={"pathway_id": pathway, **body})
        assert response.status_code == 200, response.text
        return str(response.json()["job_id"])

    def job(self, job_id: str, key: str = MAIN) -> dict[str, Any]:
        response = self.get(f"/v1/jobs/{job_id}/status", key=key)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock())


@pytest.fixture
def world(app: Starlette) -> World:
    world: World = app.state.world
    world.reset()
    return world


@pytest.fixture
def client(app: Starlette, world: World) -> Client:
    return Client(app)


# --- the document ------------------------------------------------------------------------------


def conforms_to_the_document(app: Starlette, response: httpx.Response) -> None:
    """Fail unless the response is one openapi/auvy.yaml allows for the operation it answers."""
    world: World = app.state.world
    request = response.request
    path = request.url.path
    if path.startswith("/auvy/"):
        path = path[len("/auvy") :]
    try:
        operation, _ = world.specs["auvy"].match(request.method, path)
    except RequestError:
        return  # no operation: unknown route or method, checked by the test itself
    spec = ResponseSpec.for_api("auvy")
    is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
    body = None if is_stream else response.json()
    spec.check(operation.operation_id, response.status_code, response.headers, body)
    if is_stream:
        for frame in response.text.split("\n\n"):
            for line in frame.splitlines():
                if line.startswith("data: "):
                    spec.check_event(operation.operation_id, json.loads(line[len("data: ") :]))


def error(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    """Check the flat AUVY envelope; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body.get("message"), str)
    assert body["code"] == code, body
    expected = {"code", "message"} | ({"field"} if field is not None else set())
    assert set(body) == expected, body
    if field is not None:
        assert body["field"] == field
    assert body["message"]
    return str(body["message"])


@contextlib.contextmanager
def unchanged(world: World, *job_ids: str) -> Iterator[None]:
    """The block's requests are refused: every job keeps its status and event count."""

    def state() -> list[tuple[JobStatus, int]]:
        out = []
        for job_id in job_ids:
            job = world.auvy.jobs.get(job_id)
            assert job is not None
            out.append((job.status, len(world.auvy.read_events(job, None).entries)))
        return out

    before = state()
    yield
    assert state() == before


def intervention_body(job: Mapping[str, Any], action: str, **extra: Any) -> dict[str, Any]:
    waiting_for = job["waitingFor"]
    assert waiting_for is not None
    return {
        "workspace_id": ACME,
        "input": {
            "type": "intervention_response",
            "interventionId": waiting_for["interventionId"],
            "action": action,
            **extra,
        },
    }


# --- starting jobs ---------------------------------------------------------------------------


def test_create_job_answers_job_accepted(client: Client) -> None:
    response = client.post("/v1/jobs", json={"pathway_id": COMPLETE, "input": {"q": 1}})
    assert response.status_code == 200
    body = response.json()
    assert body == {"job_id": body["job_id"], "status": "pending"}
    job = client.job(body["job_id"])
    assert job["status"] == "pending"
    assert job["pathway_id"] == COMPLETE
    assert job["kind"] == "pathway"


def test_a_created_job_runs_to_completion(client: Client) -> None:
    job_id = client.start(COMPLETE)
    client.advance(SETTLE_MS)
    job = client.job(job_id)
    assert job["status"] == "completed"
    assert job["progress"] == 100
    assert job["result"] == {"summary": "Revenue grew 12%.", "steps": 5}
    assert job["finished_at"] is not None
    assert job["waitingFor"] is None


def test_create_job_with_an_inline_pathway(client: Client, world: World) -> None:
    response = client.post(
        "/v1/jobs", json={"pathway": {"nodes": []}, "data": {"a": 1}, "input": {"a": 2, "b": 3}}
    )
    assert response.status_code == 200
    job_id = response.json()["job_id"]
    job = world.auvy.jobs.get(job_id)
    assert job is not None
    assert job.input == {"a": 2, "b": 3, "_inline_pathway": {"nodes": []}}
    client.advance(SETTLE_MS)
    assert client.job(job_id)["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, None),
        ({"pathway_id": COMPLETE, "pathway": {"a": 1}}, None),
        ({"pathway_id": "not-a-uuid"}, "pathway_id"),
        ({"pathway_id": COMPLETE, "input": []}, "input"),
        ({"pathway": {}}, "pathway"),
    ],
)
def test_create_job_validation_errors(
    client: Client, world: World, body: dict[str, Any], field: str | None
) -> None:
    error(client.post("/v1/jobs", json=body), 400, "VALIDATION_ERROR", field)
    assert list(world.auvy.jobs.values()) == []


@pytest.mark.parametrize("pathway", [UNKNOWN_UUID, OTHER_PATHWAY])
def test_create_job_with_an_unknown_or_foreign_pathway_is_404(
    client: Client, world: World, pathway: str
) -> None:
    error(client.post("/v1/jobs", json={"pathway_id": pathway}), 404, "RESOURCE_NOT_FOUND")
    assert list(world.auvy.jobs.values()) == []


def test_execute_pathway(client: Client) -> None:
    for kwargs in ({}, {"json": {"input": {"topic": "q3"}, "stream": True}}):
        response = client.post(f"/v1/pathways/{COMPLETE}/execute", **kwargs)
        assert response.status_code == 200, response.text
        assert client.job(response.json()["job_id"])["pathway_id"] == COMPLETE


def test_execute_pathway_errors(client: Client) -> None:
    error(client.post(f"/v1/pathways/{UNKNOWN_UUID}/execute"), 404, "RESOURCE_NOT_FOUND")
    error(client.post(f"/v1/pathways/{OTHER_PATHWAY}/execute"), 404, "RESOURCE_NOT_FOUND")
    error(client.post("/v1/pathways/nope/execute"), 400, "VALIDATION_ERROR", "id")
    error(
        client.post(f"/v1/pathways/{COMPLETE}/execute", json={"input": 1}),
        400,
        "VALIDATION_ERROR",
        "input",
    )


def test_transcribe(client: Client) -> None:
    response = client.post(
        "/v1/transcribe", json={"audio_base64": "aGVsbG8=", "mime_type": "audio/webm"}
    )
    assert response.status_code == 200
    job_id = response.json()["job_id"]
    client.advance(SETTLE_MS)
    job = client.job(job_id)
    assert job["kind"] == "transcription"
    assert job["result"]["bytes"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"audio_base64": "not base64!", "mime_type": "audio/webm"}, "audio_base64"),
        ({"audio_base64": "aGVsbG8", "mime_type": "audio/webm"}, "audio_base64"),
        ({"audio_base64": "====", "mime_type": "audio/webm"}, "audio_base64"),
        ({"audio_base64": "", "mime_type": "audio/webm"}, "audio_base64"),
        ({"audio_base64": "aGVsbG8=", "mime_type": "video/webm"}, "mime_type"),
        ({"audio_base64": "aGVsbG8="}, "mime_type"),
    ],
)
def test_transcribe_errors(client: Client, world: World, body: dict[str, Any], field: str) -> None:
    error(client.post("/v1/transcribe", json=body), 400, "VALIDATION_ERROR", field)
    assert list(world.auvy.jobs.values()) == []


def test_chat(client: Client) -> None:
    response = client.post(
        f"/v1/chat/{TRACE}",
        json={"message": "hi there", "neuron_task_options": {"trace_type": "user"}},
    )
    assert response.status_code == 200
    job_id = response.json()["job_id"]
    client.advance(SETTLE_MS)
    job = client.job(job_id)
    assert job["kind"] == "chat"
    assert job["result"] == {"message": "You said: hi there"}


def test_chat_errors(client: Client) -> None:
    error(client.post("/v1/chat/trc_unknown", json={"message": "hi"}), 404, "RESOURCE_NOT_FOUND")
    error(client.post(f"/v1/chat/{OTHER_TRACE}", json={"message": "hi"}), 404, "RESOURCE_NOT_FOUND")
    error(
        client.post(f"/v1/chat/{TRACE}", json={"message": ""}), 400, "VALIDATION_ERROR", "message"
    )
    error(client.post(f"/v1/chat/{TRACE}", json={}), 400, "VALIDATION_ERROR", "message")
    error(
        client.post(
            f"/v1/chat/{TRACE}", json={"message": "x", "neuron_task_options": {"trace_type": "x"}}
        ),
        400,
        "VALIDATION_ERROR",
        "neuron_task_options.trace_type",
    )
    error(
        client.post("/v1/chat/" + "t" * 129, json={"message": "hi"}),
        400,
        "VALIDATION_ERROR",
        "traceId",
    )


# --- reading ---------------------------------------------------------------------------------


def test_status_of_every_kind_of_job_conforms(client: Client) -> None:
    ids = {
        name: client.start(p)
        for name, p in [
            ("approval", APPROVAL),
            ("input", INPUT),
            ("questions", QUESTIONS),
            ("pause", PAUSE),
            ("fail", FAIL),
            ("complete", COMPLETE),
        ]
    }
    pending = client.start(LONG)
    assert client.job(pending)["status"] == "pending"
    client.advance(SETTLE_MS)
    expected = {
        "approval": "waiting",
        "input": "waiting",
        "questions": "waiting",
        "pause": "paused",
        "fail": "failed",
        "complete": "completed",
    }
    for name, job_id in ids.items():
        job = client.job(job_id)
        assert job["status"] == expected[name], name
        assert job["job_id"] == job_id
    assert client.job(pending)["status"] == "running"
    waiting = client.job(ids["input"])
    assert waiting["waitingFor"]["type"] == "input"
    assert [f["name"] for f in waiting["waitingFor"]["fields"]] == ["email", "seats", "newsletter"]
    questions = client.job(ids["questions"])
    assert [q["id"] for q in questions["waitingFor"]["questions"]] == ["q1", "q2"]
    failed = client.job(ids["fail"])
    assert failed["failedReason"] == "upstream returned 502 while importing rows"


def test_list_jobs(client: Client) -> None:
    first = client.start(COMPLETE)
    client.advance(1)
    second = client.start(FAIL)
    client.advance(1)
    third = client.start(LONG)
    client.start(OTHER_PATHWAY, key=OTHER)
    client.advance(SETTLE_MS)

    response = client.get("/v1/jobs")
    assert response.status_code == 200
    body = response.json()
    assert [j["job_id"] for j in body["jobs"]] == [third, second, first]
    assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)

    page = client.get("/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert [j["job_id"] for j in page["jobs"]] == [second]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert client.get("/v1/jobs", params={"offset": 5}).json()["jobs"] == []

    by_status = client.get("/v1/jobs", params={"status": "failed"}).json()
    assert [j["job_id"] for j in by_status["jobs"]] == [second]
    assert by_status["total"] == 1
    by_pathway = client.get("/v1/jobs", params={"pathway_id": COMPLETE}).json()
    assert [j["job_id"] for j in by_pathway["jobs"]] == [first]
    assert client.get("/v1/jobs", params={"receptor_id": "rcp_1"}).json()["total"] == 0

    other = client.get("/v1/jobs", key=OTHER).json()
    assert other["total"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"status": "cancelled"}, "status"),
        ({"pathway_id": "nope"}, "pathway_id"),
        ([("limit", "1"), ("limit", "2")], "limit"),
    ],
)
def test_list_jobs_validation(client: Client, params: Any, field: str) -> None:
    error(client.get("/v1/jobs", params=params), 400, "VALIDATION_ERROR", field)


# --- controlling -----------------------------------------------------------------------------


def test_cancel_a_running_job(client: Client) -> None:
    job_id = client.start(LONG)
    client.advance(100)
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    job = response.json()
    assert (job["status"], job["failedReason"]) == ("failed", "cancelled")
    assert job["finished_at"] is not None
    assert client.job(job_id) == job


@pytest.mark.parametrize("pathway", [COMPLETE, FAIL, LONG])
def test_cancel_of_a_finished_job_is_400(client: Client, world: World, pathway: str) -> None:
    job_id = client.start(pathway)
    if pathway == LONG:
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    client.advance(SETTLE_MS)
    with unchanged(world, job_id):
        error(client.post(f"/v1/jobs/{job_id}/cancel"), 400, "VALIDATION_ERROR")


def test_cancel_of_a_waiting_job_closes_its_intervention(client: Client, world: World) -> None:
    job_id = client.start(APPROVAL)
    client.advance(SETTLE_MS)
    intervention_id = client.job(job_id)["waitingFor"]["interventionId"]
    job = client.post(f"/v1/jobs/{job_id}/cancel").json()
    assert job["waitingFor"] is None
    intervention = world.auvy.interventions.get(intervention_id)
    assert intervention is not None
    assert intervention.status == "cancelled"


@pytest.mark.parametrize(("pathway", "before"), [(PAUSE, "paused"), (APPROVAL, "waiting")])
def test_resume(client: Client, pathway: str, before: str) -> None:
    job_id = client.start(pathway)
    client.advance(SETTLE_MS)
    assert client.job(job_id)["status"] == before
    response = client.post(f"/v1/jobs/{job_id}/resume")
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "running"
    assert job["waitingFor"] is None
    client.advance(SETTLE_MS)
    assert client.job(job_id)["status"] == "completed"


@pytest.mark.parametrize(
    ("pathway", "advance"), [(LONG, 0), (LONG, 100), (COMPLETE, SETTLE_MS), (FAIL, SETTLE_MS)]
)
def test_resume_of_a_job_neither_waiting_nor_paused_is_400(
    client: Client, world: World, pathway: str, advance: int
) -> None:
    job_id = client.start(pathway)
    client.advance(advance)
    with unchanged(world, job_id):
        error(client.post(f"/v1/jobs/{job_id}/resume"), 400, "VALIDATION_ERROR")


def test_submit_input_approve(client: Client) -> None:
    job_id = client.start(APPROVAL)
    client.advance(SETTLE_MS)
    body = intervention_body(client.job(job_id), "approve", comment="ok")
    response = client.post(f"/v1/jobs/{job_id}/input", json=body)
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    client.advance(SETTLE_MS)
    assert client.job(job_id)["result"]["published"] is True


def test_submit_input_reject_fails_the_job(client: Client) -> None:
    job_id = client.start(APPROVAL)
    client.advance(SETTLE_MS)
    response = client.post(
        f"/v1/jobs/{job_id}/input", json=intervention_body(client.job(job_id), "reject")
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["failedReason"]) == ("failed", "rejected")


def test_submit_input_fields_and_answers(client: Client) -> None:
    form = client.start(INPUT)
    questions = client.start(QUESTIONS)
    client.advance(SETTLE_MS)
    ok = client.post(
        f"/v1/jobs/{form}/input",
        json=intervention_body(
            client.job(form), "submit_input", fields={"email": "a@b.test", "seats": 3}
        ),
    )
    assert ok.status_code == 200
    answered = client.post(
        f"/v1/jobs/{questions}/input",
        json=intervention_body(
            client.job(questions), "answer_questions", answers={"q1": "prod", "q2": "today"}
        ),
    )
    assert answered.status_code == 200
    client.advance(SETTLE_MS)
    assert client.job(form)["status"] == "completed"
    assert client.job(questions)["status"] == "completed"


@pytest.mark.parametrize(
    ("pathway", "action", "extra", "field"),
    [
        (APPROVAL, "submit_input", {"fields": {}}, "input.action"),
        (INPUT, "submit_input", {"fields": {"seats": 3}}, "input.fields.email"),
        (INPUT, "submit_input", {"fields": {"email": "a", "seats": "3"}}, "input.fields.seats"),
        (INPUT, "submit_input", {"fields": {"email": "a", "seats": 3, "x": 1}}, "input.fields.x"),
        (INPUT, "submit_input", {}, "input.fields"),
        (QUESTIONS, "answer_questions", {"answers": {"q1": "a"}}, "input.answers.q2"),
        (
            QUESTIONS,
            "answer_questions",
            {"answers": {"q1": "a", "q2": "b", "q3": "c"}},
            "input.answers.q3",
        ),
        (QUESTIONS, "approve", {}, "input.action"),
        (APPROVAL, "approve", {"bogus": 1}, "input.bogus"),
    ],
)
def test_submit_input_mismatches_are_400_naming_the_field(
    client: Client, world: World, pathway: str, action: str, extra: dict[str, Any], field: str
) -> None:
    job_id = client.start(pathway)
    client.advance(SETTLE_MS)
    body = intervention_body(client.job(job_id), action, **extra)
    with unchanged(world, job_id):
        error(client.post(f"/v1/jobs/{job_id}/input", json=body), 400, "VALIDATION_ERROR", field)
    assert client.job(job_id)["status"] == "waiting"


def test_submit_input_other_mismatches(client: Client, world: World) -> None:
    job_id = client.start(APPROVAL)
    client.advance(SETTLE_MS)
    job = client.job(job_id)
    stale = intervention_body(job, "approve")
    stale["input"]["interventionId"] = "int_stale"
    foreign_ws = intervention_body(job, "approve")
    foreign_ws["workspace_id"] = GLOBEX
    with unchanged(world, job_id):
        error(
            client.post(f"/v1/jobs/{job_id}/input", json=stale),
            400,
            "VALIDATION_ERROR",
            "input.interventionId",
        )
        error(
            client.post(f"/v1/jobs/{job_id}/input", json=foreign_ws),
            400,
            "VALIDATION_ERROR",
            "workspace_id",
        )
        error(
            client.post(f"/v1/jobs/{job_id}/input", json={"workspace_id": ACME}),
            400,
            "VALIDATION_ERROR",
            "input",
        )
        error(
            client.post(
                f"/v1/jobs/{job_id}/input", json=intervention_body(job, "approve"), key=OTHER
            ),
            404,
            "RESOURCE_NOT_FOUND",
        )


@pytest.mark.parametrize(
    ("pathway", "advance"), [(LONG, 0), (LONG, 100), (PAUSE, SETTLE_MS), (COMPLETE, SETTLE_MS)]
)
def test_input_when_not_waiting_is_400(
    client: Client, world: World, pathway: str, advance: int
) -> None:
    job_id = client.start(pathway)
    client.advance(advance)
    body = {
        "workspace_id": ACME,
        "input": {"type": "intervention_response", "interventionId": "int_x", "action": "approve"},
    }
    with unchanged(world, job_id):
        error(client.post(f"/v1/jobs/{job_id}/input", json=body), 400, "VALIDATION_ERROR")


# --- authentication and authorisation --------------------------------------------------------

ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/jobs", {"pathway_id": COMPLETE}),
    ("GET", "/v1/jobs", _UNSET),
    ("POST", f"/v1/pathways/{COMPLETE}/execute", _UNSET),
    ("GET", "/v1/jobs/{job}/status", _UNSET),
    ("GET", "/v1/jobs/{job}/stream", _UNSET),
    ("POST", "/v1/jobs/{job}/cancel", _UNSET),
    ("POST", "/v1/jobs/{job}/resume", _UNSET),
    ("POST", "/v1/jobs/{job}/input", {"workspace_id": ACME, "input": {}}),
    ("POST", "/v1/transcribe", {"audio_base64": "aGk=", "mime_type": "audio/webm"}),
    ("POST", f"/v1/chat/{TRACE}", {"message": "hi"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic YTpi",
        "Bearer",
        "Bearer ",
        "auvy_test_acme_rw",
        "Bearer nobody",
        "Token auvy_test_acme_rw",
    ],
)
def test_every_route_needs_a_valid_bearer_key(
    client: Client, world: World, method: str, path: str, body: Any, authorization: str | None
) -> None:
    job_id = client.start(APPROVAL)
    headers = {} if authorization is None else {"Authorization": authorization}
    with unchanged(world, job_id):
        response = client.api(method, path.format(job=job_id), key=None, headers=headers, json=body)
        error(response, 401, "AUTH_REQUIRED")
    assert len(list(world.auvy.jobs.values())) == 1


def test_the_scheme_is_case_insensitive(client: Client) -> None:
    response = client.get("/v1/jobs", key=None, headers={"Authorization": f"bearer {MAIN}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/jobs", {"nonsense": True}),
        ("POST", "/v1/jobs", b"{not json"),
        ("GET", "/v1/jobs?limit=0", _UNSET),
        ("GET", "/v1/jobs/{job}/stream?after=bad", _UNSET),
        ("POST", "/v1/jobs/{job}/input", {}),
        ("POST", "/v1/transcribe", {}),
    ],
)
def test_401_comes_before_400(client: Client, method: str, path: str, body: Any) -> None:
    job_id = client.start(COMPLETE)
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    if isinstance(body, bytes):
        kwargs["headers"] = {"Content-Type": "application/json"}
    error(client.api(method, path.format(job=job_id), key=None, **kwargs), 401, "AUTH_REQUIRED")
    error(client.api(method, path.format(job=job_id), key="nobody", **kwargs), 401, "AUTH_REQUIRED")
    assert client.api(method, path.format(job=job_id), **kwargs).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/jobs", {"pathway_id": COMPLETE}),
        ("POST", f"/v1/pathways/{COMPLETE}/execute", _UNSET),
        ("POST", "/v1/jobs/{job}/cancel", _UNSET),
        ("POST", "/v1/jobs/{job}/resume", _UNSET),
        ("POST", "/v1/jobs/{job}/input", "approve"),
        ("POST", "/v1/transcribe", {"audio_base64": "aGk=", "mime_type": "audio/webm"}),
        ("POST", f"/v1/chat/{TRACE}", {"message": "hi"}),
    ],
)
def test_a_read_only_key_is_forbidden_to_write(
    client: Client, world: World, method: str, path: str, body: Any
) -> None:
    job_id = client.start(APPROVAL)
    client.advance(SETTLE_MS)
    if body == "approve":
        body = intervention_body(client.job(job_id), "approve")
    with unchanged(world, job_id):
        response = client.api(method, path.format(job=job_id), key=READ_ONLY, json=body)
        error(response, 403, "FORBIDDEN")
    assert len(list(world.auvy.jobs.values())) == 1
    assert client.get(f"/v1/jobs/{job_id}/status", key=READ_ONLY).status_code == 200
    assert client.get("/v1/jobs", key=READ_ONLY).json()["total"] == 1


@pytest.mark.parametrize(
    ("key", "code"), [(TRIAL_EXPIRED, "trial_expired"), (COST_CAP, "cost_cap")]
)
def test_blocked_workspaces_cannot_start_jobs_but_can_read(
    client: Client, world: World, key: str, code: str
) -> None:
    starts: list[tuple[str, Any]] = [
        ("/v1/jobs", {"pathway": {"nodes": []}}),
        (f"/v1/pathways/{COMPLETE}/execute", _UNSET),
        ("/v1/transcribe", {"audio_base64": "aGk=", "mime_type": "audio/webm"}),
        (f"/v1/chat/{TRACE}", {"message": "hi"}),
    ]
    for path, body in starts:
        error(client.post(path, key=key, json=body), 403, code)
    assert list(world.auvy.jobs.values()) == []
    listed = client.get("/v1/jobs", key=key)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0


def test_a_workspace_blocked_at_run_time(client: Client) -> None:
    response = client.control("POST", f"/auvy/workspaces/{ACME}/state", json={"state": "cost_cap"})
    assert response.json() == {"workspace_id": ACME, "state": "cost_cap"}
    error(client.post("/v1/jobs", json={"pathway_id": COMPLETE}), 403, "cost_cap")
    client.control("POST", f"/auvy/workspaces/{ACME}/state", json={"state": "active"})
    assert client.post("/v1/jobs", json={"pathway_id": COMPLETE}).status_code == 200


# --- not found -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "status", _UNSET),
        ("GET", "stream", _UNSET),
        ("POST", "cancel", _UNSET),
        ("POST", "resume", _UNSET),
        (
            "POST",
            "input",
            {
                "workspace_id": ACME,
                "input": {
                    "type": "intervention_response",
                    "interventionId": "i",
                    "action": "approve",
                },
            },
        ),
    ],
)
def test_unknown_and_foreign_jobs_are_404(
    client: Client, world: World, method: str, suffix: str, body: Any
) -> None:
    error(
        client.api(method, f"/v1/jobs/no-such-job/{suffix}", json=body), 404, "RESOURCE_NOT_FOUND"
    )
    foreign = client.start(OTHER_PATHWAY, key=OTHER)
    with unchanged(world, foreign):
        error(
            client.api(method, f"/v1/jobs/{foreign}/{suffix}", json=body), 404, "RESOURCE_NOT_FOUND"
        )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nope"), ("GET", "/v1/jobs/"), ("GET", "/v2/jobs"), ("GET", "/")],
)
def test_unknown_routes_are_404_not_found(client: Client, method: str, path: str) -> None:
    error(client.api(method, path), 404, "NOT_FOUND")
    error(client.api(method, path, key=None), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/jobs", "GET, POST"),
        ("PUT", "/v1/jobs/abc/status", "GET"),
        ("GET", "/v1/jobs/abc/cancel", "POST"),
        ("POST", "/v1/jobs/abc/status", "GET"),
        ("PATCH", "/v1/public/receptors/by-id/abc", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow_before_authentication(
    client: Client, method: str, path: str, allow: str
) -> None:
    """The x-decision in auvy.yaml's info: status, code and message agree, and Allow names the
    path's methods, whether or not the caller is authenticated."""
    for key in (MAIN, None):
        response = client.api(method, path, key=key)
        message = error(response, 405, "METHOD_NOT_ALLOWED")
        assert f"{method} is not allowed" in message
        assert response.headers["allow"] == allow


def test_unknown_paths_outside_the_prefixes_are_404_json(client: Client) -> None:
    for path in ("/nowhere", "/auvyx/v1/jobs", "/v1/jobs"):
        response = client.request("GET", path, key=None)
        assert response.status_code == 404
        body = response.json()
        assert body["code"] == "NOT_FOUND"
        assert "/auvy" in body["apis"]


# --- bodies over HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"pathway_id": "' + COMPLETE.encode() + b'", "input": {"n": NaN}}', "application/json"),
        (
            b'{"pathway_id": "' + COMPLETE.encode() + b'", "input": {"n": ' + b"7" * 5000 + b"}}",
            "application/json",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"pathway_id": "' + COMPLETE.encode() + b'"}', "text/plain"),
        (b'{"pathway_id": "' + COMPLETE.encode() + b'"}', ""),
        (b"", "application/json"),
    ],
)
def test_bad_bodies_are_400_never_500(
    client: Client, world: World, content: bytes, content_type: str
) -> None:
    response = client.post("/v1/jobs", content=content, headers={"Content-Type": content_type})
    error(response, 400, "VALIDATION_ERROR")
    assert list(world.auvy.jobs.values()) == []


def test_a_nan_answer_never_reaches_the_job(client: Client) -> None:
    job_id = client.start(INPUT)
    client.advance(SETTLE_MS)
    body = json.dumps(
        intervention_body(client.job(job_id), "submit_input", fields={"email": "a", "seats": 1})
    )
    response = client.post(
        f"/v1/jobs/{job_id}/input",
        content=body.replace('"seats": 1', '"seats": NaN').encode(),
        headers={"Content-Type": "application/json"},
    )
    error(response, 400, "VALIDATION_ERROR")
    assert client.job(job_id)["status"] == "waiting"


def test_a_body_over_max_body_bytes_is_400() -> None:
    app = create_app(
        ServerProfile.from_dict({**PROFILE, "server": {"clock": "manual", "max_body_bytes": 64}}),
        clock=ManualClock(),
    )
    small = Client(app)
    assert small.post("/v1/jobs", json={"pathway_id": COMPLETE}).status_code == 200
    message = error(
        small.post("/v1/jobs", json={"pathway_id": COMPLETE, "input": {"x": "y" * 64}}),
        400,
        "VALIDATION_ERROR",
    )
    assert "64 bytes" in message


# --- unexpected errors -----------------------------------------------------------------------


def test_an_unexpected_exception_is_a_500_envelope_without_details(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = client.start(COMPLETE)

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret-detail /etc/passwd")

    monkeypatch.setattr(world.auvy, "get_job", explode)
    with caplog.at_level("ERROR", logger="mock_server"):
        response = client.get(f"/v1/jobs/{job_id}/status")
    message = error(response, 500, "INTERNAL_SERVER_ERROR")
    assert message == "internal server error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_500_responses_still_carry_cors_headers(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(world.auvy, "list_jobs", explode)
    with caplog.at_level("CRITICAL", logger="mock_server"):
        response = client.get("/v1/jobs", headers={"Origin": "http://localhost:5173"})
    error(response, 500, "INTERNAL_SERVER_ERROR")
    assert response.headers["access-control-allow-origin"] == "*"


# --- CORS ------------------------------------------------------------------------------------


def test_cors_preflight(client: Client) -> None:
    response = client.api(
        "OPTIONS",
        "/v1/jobs",
        key=None,
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")


def test_cors_on_a_simple_request(client: Client) -> None:
    response = client.get("/v1/jobs", headers={"Origin": "http://localhost:5173"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-stream-truncated", "retry-after"} <= exposed
    refused = client.get("/v1/jobs", key=None, headers={"Origin": "http://localhost:5173"})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")


# --- streams over the in-process transport (finished jobs only: it buffers) ------------------


def test_stream_of_a_finished_job_replays_and_closes(client: Client) -> None:
    job_id = client.start(COMPLETE)
    client.advance(SETTLE_MS)
    response = client.get(f"/v1/jobs/{job_id}/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    frames = [f for f in response.text.split("\n\n") if f]
    data = [json.loads(f.split("\ndata: ", 1)[1]) for f in frames]
    assert data[-1]["type"] == "complete"
    assert [d["type"] for d in data].count("complete") == 1
    assert all(f.startswith("id: ") for f in frames)


def test_stream_after_must_be_a_stream_id(client: Client) -> None:
    job_id = client.start(COMPLETE)
    for bad in ("abc", "1", "1-", "1-0-0", "-1-0", f"{2**64}-0", "\uff11-0"):
        error(
            client.get(f"/v1/jobs/{job_id}/stream", params={"after": bad}),
            400,
            "VALIDATION_ERROR",
            "after",
        )


# --- control routes --------------------------------------------------------------------------


def test_health(client: Client) -> None:
    response = client.control("GET", "/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert "auvy" in body["apis"]


def test_reset_drops_jobs_and_restores_the_seed(client: Client, world: World) -> None:
    job_id = client.start(LONG)
    client.control("POST", f"/auvy/workspaces/{ACME}/state", json={"state": "trial_expired"})
    world.auvy.pathways.pop(COMPLETE)
    response = client.control("POST", "/reset")
    assert response.status_code == 200
    assert response.json() == {"status": "reset"}
    error(client.get(f"/v1/jobs/{job_id}/status"), 404, "RESOURCE_NOT_FOUND")
    assert client.get("/v1/jobs").json()["total"] == 0
    assert world.auvy.workspaces[ACME].state == "active"
    assert COMPLETE in world.auvy.pathways
    assert len(world.engine.scheduler) == 0
    assert client.post("/v1/jobs", json={"pathway_id": COMPLETE}).status_code == 200


def test_the_clock(client: Client, world: World) -> None:
    now = client.control("GET", "/clock").json()
    assert now["manual"] is True
    assert now["now_ms"] == world.engine.now()
    assert now["now"].endswith("Z")
    job_id = client.start(COMPLETE)
    moved = client.control("POST", "/clock/advance", json={"ms": 250})
    assert moved.status_code == 200
    body = moved.json()
    assert body["now_ms"] == now["now_ms"] + 250
    assert body["timers_run"] > 0
    assert client.job(job_id)["status"] == "completed"
    zero = client.control("POST", "/clock/advance", json={"ms": 0}).json()
    assert (zero["now_ms"], zero["timers_run"]) == (body["now_ms"], 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"ms": -1}},
        {"json": {"ms": "10"}},
        {"json": {"ms": 1.5}},
        {"json": {"ms": True}},
        {"json": {"ms": None}},
        {"json": {}},
        {"json": [10]},
        {"content": b"{nope"},
        {"content": b""},
    ],
)
def test_advance_refuses_bad_ms(client: Client, world: World, kwargs: dict[str, Any]) -> None:
    before = world.engine.now()
    response = client.control("POST", "/clock/advance", **kwargs)
    assert response.status_code == 400
    assert "error" in response.json()
    assert world.engine.now() == before


def test_control_lists_every_workspaces_jobs(client: Client) -> None:
    mine = client.start(COMPLETE)
    client.advance(1)
    theirs = client.start(OTHER_PATHWAY, key=OTHER)
    jobs = client.control("GET", "/auvy/jobs").json()["jobs"]
    assert [(j["job_id"], j["workspace_id"]) for j in jobs] == [(theirs, GLOBEX), (mine, ACME)]


def test_forced_outcomes(client: Client, world: World) -> None:
    done = client.start(LONG)
    response = client.control("POST", f"/auvy/jobs/{done}/outcome", json={"outcome": "complete"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["result"]) == ("completed", {"forced": True})

    broken = client.start(APPROVAL)
    client.advance(SETTLE_MS)
    response = client.control(
        "POST", f"/auvy/jobs/{broken}/outcome", json={"outcome": "fail", "reason": "disk full"}
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["failedReason"]) == ("failed", "disk full")

    live = client.start(LONG)
    with unchanged(world, done, broken, live):
        for body in ({"outcome": "explode"}, {}, {"outcome": "fail", "reason": 3}):
            assert (
                client.control("POST", f"/auvy/jobs/{live}/outcome", json=body).status_code == 400
            )
        assert (
            client.control("POST", "/auvy/jobs/nope/outcome", json={"outcome": "fail"}).status_code
            == 404
        )
        for job_id in (done, broken):
            for outcome in ("complete", "fail"):
                response = client.control(
                    "POST", f"/auvy/jobs/{job_id}/outcome", json={"outcome": outcome}
                )
                assert response.status_code == 409
                assert "error" in response.json()


def test_workspace_state_control_errors(client: Client) -> None:
    assert (
        client.control("POST", "/auvy/workspaces/nope/state", json={"state": "active"}).status_code
        == 404
    )
    for body in ({"state": "frozen"}, {}, {"state": None}):
        assert (
            client.control("POST", f"/auvy/workspaces/{ACME}/state", json=body).status_code == 400
        )


# --- other shapes of the app -----------------------------------------------------------------


def test_a_single_api_at_the_root() -> None:
    app = create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock(), root_api="auvy")
    root = Client(app, prefix="")
    job_id = root.start(COMPLETE)
    assert root.job(job_id)["status"] == "pending"
    assert root.control("GET", "/health").status_code == 200
    assert root.control("POST", "/clock/advance", json={"ms": SETTLE_MS}).status_code == 200
    assert root.job(job_id)["status"] == "completed"
    error(root.request("GET", "/auvy/v1/jobs"), 404, "NOT_FOUND")
    error(root.request("GET", "/nowhere"), 404, "NOT_FOUND")


def test_unknown_apis_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown API"):
        create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock(), root_api="nope")
    with pytest.raises(ValueError, match="unknown API"):
        create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock(), apis=["auvy", "nope"])


def test_a_manual_profile_clock_gives_a_manual_world() -> None:
    world = World(ServerProfile.from_dict(PROFILE))
    assert world.engine.clock.manual is True
    assert World(ServerProfile.from_dict({})).engine.clock.manual is False


def test_the_driver_runs_timers_without_requests_and_stops_cleanly() -> None:
    from mock_server.app import drive

    profile = ServerProfile.from_dict({"auvy": {"start_delay_ms": 0}})
    app = create_app(profile, clock=ManualClock())
    world: World = app.state.world

    async def run() -> None:
        task = asyncio.create_task(drive(world))
        await asyncio.sleep(0)
        assert world.engine.scheduler.on_schedule is not None
        # A new timer wakes the driver, which runs it: no request is needed.
        job = world.auvy.start_pathway(world.auvy.authenticate(MAIN), COMPLETE)
        for _ in range(5):
            await asyncio.sleep(0)
        assert job.status is JobStatus.RUNNING
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert world.engine.scheduler.on_schedule is None

    asyncio.run(run())
