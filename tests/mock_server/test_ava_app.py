"""AVA through the whole ASGI app, over an in-process transport, on a manual clock.

Every response of an AVA operation is checked against openapi/ava.yaml by the conformance
suite's own checker; every error must be the AVA envelope with the right status and code, and a
refused request must leave the job as it was.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import validate
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.app import create_app, with_ava_webhooks
from mock_server.cli import banner, parse_args
from mock_server.clock import ManualClock
from mock_server.errors import RequestError
from mock_server.profile import FIXTURES, REPO, ProfileError, ServerProfile
from mock_server.world import World
from tests.mock_server.asgi import UNSET, asgi_request

SECRET = "ava_test_internal_secret"
ACME, GLOBEX, QUEUE, INITECH = "ten_acme", "ten_globex", "ten_queue", "ten_initech"
COMPLETE, FAIL, LONG, LOGS = "wkr_acme_complete", "wkr_acme_fail", "wkr_acme_long", "wkr_acme_logs"
HOOK = "http://hooks.test/ava"
STEP_MS = 10
PROFILE = {
    "server": {"clock": "manual"},
    "ava": {
        "step_ms": STEP_MS,
        "start_delay_ms": 5,
        "webhooks": [{"url": HOOK, "secret": "k"}],
    },
}
UNKNOWN_JOB = "job_01kdvdna00hse2fj52gfbfnb4f"
_UNSET = UNSET


def identity(
    tenant: str | None = ACME,
    role: str | None = "tenant-system-admin",
    *,
    secret: str | None = SECRET,
    user: str | None = "usr_1",
) -> dict[str, str]:
    pairs = {
        "x-internal-secret": secret,
        "x-tenant-id": tenant,
        "x-user-id": user,
        "x-platform-role": role,
    }
    return {k: v for k, v in pairs.items() if v is not None}


class Client:
    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = _UNSET,
        content: bytes | None = None,
        params: Any = None,
    ) -> httpx.Response:
        return asgi_request(
            self.app,
            method,
            path,
            headers=dict(headers or {}),
            json=json,
            content=content,
            params=params,
        )

    def ava(
        self, method: str, path: str, who: Mapping[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        response = self.request(
            method, "/ava" + path, headers=identity() if who is None else who, **kw
        )
        conforms(self.app, response)
        return response

    def control(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.request(method, "/_mock" + path, **kw)

    def advance(self, ms: int) -> None:
        assert self.control("POST", "/clock/advance", json={"ms": ms}).status_code == 200

    def trigger(
        self, worker: str = COMPLETE, who: Mapping[str, str] | None = None, **body: Any
    ) -> dict[str, Any]:
        response = self.ava("POST", "/v1/ava/jobs", who, json={"worker_id": worker, **body})
        assert response.status_code == 201, response.text
        record: dict[str, Any] = response.json()["data"]
        return record

    def job(self, job_id: str, who: Mapping[str, str] | None = None) -> dict[str, Any]:
        response = self.ava("GET", f"/v1/ava/jobs/{job_id}", who)
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()["data"]
        return record


def conforms(app: Starlette, response: httpx.Response) -> None:
    """Fail unless openapi/ava.yaml allows the response for the operation it answers."""
    world: World = app.state.world
    path = response.request.url.path.removeprefix("/ava")
    try:
        operation, _ = world.specs["ava"].match(response.request.method, path)
    except RequestError:
        return  # no operation: the test checks the envelope itself
    ResponseSpec.for_api("ava").check(
        operation.operation_id, response.status_code, response.headers, response.json()
    )


def error(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, body
    assert err["message"] and err["request_id"].startswith("req_")
    assert err["docs_url"].endswith(f"/errors/{code}")
    if field is not None:
        assert set(err["fields"]) == {field}, err
    else:
        assert "fields" not in err or err["fields"], err
    return str(err["message"])


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


def test_the_spec_is_valid_openapi_with_the_five_operations() -> None:
    document = yaml.safe_load((REPO / "openapi" / "ava.yaml").read_text())
    validate(document)
    operations = {
        op["operationId"]: op
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert set(operations) == {"triggerJob", "listJobs", "getJob", "getJobLogs", "cancelJob"}
    for op in operations.values():
        assert op["x-source"] == "ava-jobs.txt" and op["description"] and op["x-decision"]
    names = {p.get("name") for p in document["paths"]["/v1/ava/jobs"]["get"]["parameters"]}
    expected = {"worker_id", "status", "trigger", "created_after", "created_before"}
    assert {f"filter[{n}]" for n in expected} <= names


# --- the happy path ----------------------------------------------------------------------------


def test_trigger_poll_logs_and_list(client: Client) -> None:
    record = client.trigger(priority=2, input={"a": 1}, trigger="webhook")
    assert record["status"] == "queued" and record["triggered_by"] == "usr_1"
    client.advance(5 * STEP_MS)
    done = client.job(record["id"])
    assert done["status"] == "completed" and done["duration_ms"] == 4 * STEP_MS
    logs = client.ava("GET", f"/v1/ava/jobs/{record['id']}/logs").json()["data"]
    assert logs["job_status"] == "completed" and logs["logs"][0]["msg"] == "Worker handler started"
    listed = client.ava("GET", "/v1/ava/jobs", params={"filter[trigger]": "webhook"})
    assert [j["id"] for j in listed.json()["data"]] == [record["id"]]


def test_priority_5_0_is_the_integer_5(client: Client) -> None:
    assert client.trigger(priority=5.0)["priority"] == 5


def test_cancel_running_then_409(client: Client) -> None:
    job_id = client.trigger(LONG)["id"]
    client.advance(STEP_MS)
    assert client.job(job_id)["status"] == "running"
    response = client.ava("POST", f"/v1/ava/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["data"]["status"] == "cancelled"
    before = client.job(job_id)
    error(client.ava("POST", f"/v1/ava/jobs/{job_id}/cancel"), 409, "resource_conflict")
    assert client.job(job_id) == before


@pytest.mark.parametrize("worker", [COMPLETE, FAIL])
def test_cancel_of_a_finished_job_is_409_and_changes_nothing(client: Client, worker: str) -> None:
    job_id = client.trigger(worker)["id"]
    client.advance(20 * STEP_MS)
    before = client.job(job_id)
    assert before["status"] in ("completed", "failed")
    message = error(client.ava("POST", f"/v1/ava/jobs/{job_id}/cancel"), 409, "resource_conflict")
    assert before["status"] in message
    assert client.job(job_id) == before


# --- every error path --------------------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/ava/jobs", {"worker_id": COMPLETE}),
    ("GET", "/v1/ava/jobs", None),
    ("GET", f"/v1/ava/jobs/{UNKNOWN_JOB}", None),
    ("GET", f"/v1/ava/jobs/{UNKNOWN_JOB}/logs", None),
    ("POST", f"/v1/ava/jobs/{UNKNOWN_JOB}/cancel", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        (identity(secret=None), 401, "unauthorized"),
        (identity(secret="nope"), 401, "unauthorized"),
        (identity(tenant=None), 401, "unauthorized"),
        (identity(tenant="ten_unknown"), 401, "unauthorized"),
        (identity(user=None), 401, "unauthorized"),
        (identity(user=""), 401, "unauthorized"),
        (identity(role=None), 403, "forbidden"),
        (identity(role="root"), 403, "forbidden"),
    ],
    ids=[
        "no-secret",
        "bad-secret",
        "no-tenant",
        "bad-tenant",
        "no-user",
        "blank-user",
        "no-role",
        "bad-role",
    ],
)
def test_callers_are_checked_before_anything_else(
    client: Client,
    method: str,
    path: str,
    body: Any,
    who: dict[str, str],
    status: int,
    code: str,
) -> None:
    # A malformed body must not turn the refusal into a 400: who you are comes first.
    kw: dict[str, Any] = {"content": b"{not json"} if body is not None else {}
    error(client.ava(method, path, who, **kw), status, code)


def test_a_non_ascii_secret_is_refused_not_crashed(client: Client) -> None:
    headers = [(k.encode(), v.encode()) for k, v in identity().items() if k != "x-internal-secret"]
    headers.append((b"x-internal-secret", "sécret".encode("latin-1")))

    response = asgi_request(client.app, "GET", "/ava/v1/ava/jobs", headers=headers)
    error(response, 401, "unauthorized")


@pytest.mark.parametrize("role", ["tenant-viewer", "tenant-member", "tenant-admin"])
def test_readers_cannot_write_but_can_read(client: Client, world: World, role: str) -> None:
    parked = client.trigger(scheduled_at="2030-01-01T00:00:00Z")
    reader = identity(role=role)
    error(
        client.ava("POST", "/v1/ava/jobs", reader, json={"worker_id": COMPLETE}), 403, "forbidden"
    )
    error(client.ava("POST", f"/v1/ava/jobs/{parked['id']}/cancel", reader), 403, "forbidden")
    assert client.job(parked["id"], reader)["status"] == "queued"
    assert client.ava("GET", "/v1/ava/jobs", reader).status_code == 200
    assert client.ava("GET", f"/v1/ava/jobs/{parked['id']}/logs", reader).status_code == 200
    assert len(list(world.ava.jobs.values())) == 1


def test_a_suspended_tenant_is_403_tenant_suspended(client: Client) -> None:
    who = identity(INITECH)
    body = {"worker_id": "wkr_initech_complete"}
    error(client.ava("POST", "/v1/ava/jobs", who, json=body), 403, "tenant_suspended")
    assert client.ava("GET", "/v1/ava/jobs", who).json() == {"data": []}


def test_another_tenants_job_and_worker_are_404(client: Client) -> None:
    job_id = client.trigger(LONG)["id"]
    other = identity(GLOBEX)
    for method, suffix in (("GET", ""), ("GET", "/logs"), ("POST", "/cancel")):
        error(
            client.ava(method, f"/v1/ava/jobs/{job_id}{suffix}", other), 404, "resource_not_found"
        )
    assert client.ava("GET", "/v1/ava/jobs", other).json() == {"data": []}
    assert client.job(job_id)["status"] == "queued"
    body = {"worker_id": "wkr_globex_complete"}
    error(client.ava("POST", "/v1/ava/jobs", json=body), 404, "resource_not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/ava/jobs/{UNKNOWN_JOB}"),
        ("GET", f"/v1/ava/jobs/{UNKNOWN_JOB}/logs"),
        ("POST", f"/v1/ava/jobs/{UNKNOWN_JOB}/cancel"),
        ("GET", "/v1/ava/workers"),
        ("GET", "/nothing/here"),
    ],
)
def test_unknown_jobs_and_routes_are_404(client: Client, method: str, path: str) -> None:
    error(client.ava(method, path), 404, "resource_not_found")


def test_an_unknown_method_is_405_with_allow(client: Client) -> None:
    response = client.ava("DELETE", "/v1/ava/jobs")
    error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "worker_id"),
        ({"worker_id": ""}, "worker_id"),
        ({"worker_id": 5}, "worker_id"),
        ({"worker_id": "w" * 201}, "worker_id"),
        ({"worker_id": COMPLETE, "priority": 0}, "priority"),
        ({"worker_id": COMPLETE, "priority": 11}, "priority"),
        ({"worker_id": COMPLETE, "priority": "5"}, "priority"),
        ({"worker_id": COMPLETE, "priority": 5.5}, "priority"),
        ({"worker_id": COMPLETE, "priority": True}, "priority"),
        ({"worker_id": COMPLETE, "priority": None}, "priority"),
        ({"worker_id": COMPLETE, "priority": 10**400}, None),
        ({"worker_id": COMPLETE, "trigger": "cron"}, "trigger"),
        ({"worker_id": COMPLETE, "input": []}, "input"),
        ({"worker_id": COMPLETE, "input": None}, "input"),
        ({"worker_id": COMPLETE, "scheduled_at": "soon"}, "scheduled_at"),
        ({"worker_id": COMPLETE, "scheduled_at": "2025-02-30T00:00:00Z"}, "scheduled_at"),
        ({"worker_id": COMPLETE, "scheduled_at": "2025-06-01T10:00:00"}, "scheduled_at"),
        ({"worker_id": COMPLETE, "scheduled_at": "0001-01-01T00:00:00+23:59"}, "scheduled_at"),
        ({"worker_id": COMPLETE, "scheduled_at": "9999-12-31T23:59:59-23:59"}, "scheduled_at"),
        ({"worker_id": COMPLETE, "scheduled_at": "2025-06-01T10:00:00\u0662Z"}, "scheduled_at"),
        ([], None),
        ("job", None),
    ],
)
def test_trigger_rejects_bad_bodies(
    client: Client, world: World, body: Any, field: str | None
) -> None:
    response = client.ava("POST", "/v1/ava/jobs", json=body)
    if field is None:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "validation_error"
    else:
        error(response, 400, "validation_error", field)
    assert list(world.ava.jobs.values()) == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (b"{", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"worker_id": "x", "input": {"a": NaN}}', "application/json"),
        (b'{"worker_id": "wkr_acme_complete"}', "text/plain"),
        (b'{"worker_id": "wkr_acme_complete", "input": {"a": "\\ud800"}}', "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"worker_id": "' + b"x" * 2_000_000 + b'"}', "application/json"),
    ],
    ids=["empty", "truncated", "not-utf8", "nan", "text-plain", "surrogate", "deep", "huge"],
)
def test_trigger_rejects_bad_raw_bodies(
    client: Client, world: World, content: bytes, content_type: str
) -> None:
    response = client.ava(
        "POST", "/v1/ava/jobs", {**identity(), "content-type": content_type}, content=content
    )
    error(response, 400, "validation_error")
    assert list(world.ava.jobs.values()) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter[status]": "paused"}, "filter[status]"),
        ({"filter[trigger]": "cron"}, "filter[trigger]"),
        ({"filter[created_after]": "yesterday"}, "filter[created_after]"),
        ({"filter[created_before]": "2025-13-01T00:00:00Z"}, "filter[created_before]"),
        ({"filter[created_after]": "0001-01-01T00:00:00+23:59"}, "filter[created_after]"),
        ({"filter[worker_id]": ""}, "filter[worker_id]"),
        ([("filter[status]", "queued"), ("filter[status]", "running")], "filter[status]"),
    ],
)
def test_list_rejects_bad_filters(client: Client, params: Any, field: str) -> None:
    error(client.ava("GET", "/v1/ava/jobs", params=params), 400, "validation_error", field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "501"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-3"}, "limit"),
        ({"limit": "1e2"}, "limit"),
        ({"limit": "9" * 40}, "limit"),
        ({"filter[level]": "debug"}, "filter[level]"),
    ],
)
def test_logs_reject_bad_parameters(client: Client, params: Any, field: str) -> None:
    job_id = client.trigger()["id"]
    response = client.ava("GET", f"/v1/ava/jobs/{job_id}/logs", params=params)
    error(response, 400, "validation_error", field)


def test_logs_limits(client: Client) -> None:
    job_id = client.trigger(LOGS)["id"]
    client.advance(5 * STEP_MS)
    path = f"/v1/ava/jobs/{job_id}/logs"
    assert len(client.ava("GET", path).json()["data"]["logs"]) == 100
    assert len(client.ava("GET", path, params={"limit": "500"}).json()["data"]["logs"]) == 500
    errors = client.ava("GET", path, params={"filter[level]": "error", "limit": "500"})
    assert {line["level"] for line in errors.json()["data"]["logs"]} == {"error"}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_an_overlong_header_is_a_validation_error(
    client: Client, method: str, path: str, body: Any
) -> None:
    who = identity(user="u" * 201)
    kw: dict[str, Any] = {"json": body} if body is not None else {}
    error(client.ava(method, path, who, **kw), 400, "validation_error", "x-user-id")


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/logs"), ("POST", "/cancel")])
def test_an_overlong_job_id_is_a_validation_error(client: Client, method: str, suffix: str) -> None:
    path = f"/v1/ava/jobs/{'j' * 201}{suffix}"
    error(client.ava(method, path), 400, "validation_error", "id")


def test_an_unexpected_exception_is_a_500_envelope(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(world.ava, "list_jobs", explode)
    response = client.ava("GET", "/v1/ava/jobs")
    message = error(response, 500, "internal_error")
    assert "secret internals" not in response.text and message == "internal server error"


# --- control routes ----------------------------------------------------------------------------


def test_control_lists_and_forces_jobs(client: Client) -> None:
    parked = client.trigger(scheduled_at="2030-01-01T00:00:00Z")
    listed = client.control("GET", "/ava/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [parked["id"]]
    forced = client.control("POST", f"/ava/jobs/{parked['id']}/outcome", json={"outcome": "fail"})
    assert forced.status_code == 200 and forced.json()["status"] == "failed"
    again = client.control("POST", f"/ava/jobs/{parked['id']}/outcome", json={"outcome": "fail"})
    assert again.status_code == 409
    other = client.trigger()
    bad = client.control("POST", f"/ava/jobs/{other['id']}/outcome", json={"outcome": "maybe"})
    assert bad.status_code == 400
    bad_reason = client.control(
        "POST", f"/ava/jobs/{other['id']}/outcome", json={"outcome": "fail", "reason": 3}
    )
    assert bad_reason.status_code == 400
    missing = client.control("POST", "/ava/jobs/job_x/outcome", json={"outcome": "complete"})
    assert missing.status_code == 404


def test_control_webhooks_and_deliveries(client: Client, world: World) -> None:
    assert client.control("GET", "/ava/webhooks").json() == {"webhooks": [{"url": HOOK}]}
    added = client.control("POST", "/ava/webhooks", json={"url": "http://other.test/h"})
    assert added.status_code == 201
    assert {"url": "http://other.test/h"} in added.json()["webhooks"]
    for body in ({"url": "ftp://x"}, {"url": 3}, {"url": "http://x", "secret": ""}):
        assert client.control("POST", "/ava/webhooks", json=body).status_code == 400
    job_id = client.trigger()["id"]
    client.advance(10 * STEP_MS)
    found = client.control("GET", "/ava/webhooks/deliveries", params={"job_id": job_id})
    deliveries = found.json()["deliveries"]
    assert sorted(d["url"] for d in deliveries) == sorted([HOOK, "http://other.test/h"])
    assert {d["type"] for d in deliveries} == {"ava.job.completed"}
    assert {d["state"] for d in deliveries} == {"pending"}, "no sender runs without a lifespan"
    retry = client.control("POST", f"/ava/webhooks/deliveries/{deliveries[0]['id']}/retry")
    assert retry.status_code == 409
    assert client.control("POST", "/ava/webhooks/deliveries/dlv_x/retry").status_code == 404
    client.control("POST", "/reset")
    assert client.control("GET", "/ava/webhooks").json() == {"webhooks": [{"url": HOOK}]}
    assert client.control("GET", "/ava/webhooks/deliveries").json() == {"deliveries": []}
    assert list(world.ava.jobs.values()) == []


# --- profile, command line, fixtures ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ava", "message"),
    [
        ({"nope": 1}, "unknown key"),
        ({"step_ms": -1}, "step_ms"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"webhook_max_attempts": True}, "webhook_max_attempts"),
        ({"webhook_timeout_ms": 0}, "webhook_timeout_ms"),
        ({"webhook_secret": ""}, "webhook_secret"),
        ({"webhooks": {"url": "http://x"}}, "list"),
        ({"webhooks": [{"secret": "x"}]}, "url"),
        ({"webhooks": [{"url": "mailto:x"}]}, "http"),
        ({"webhooks": [{"url": "http://x", "extra": 1}]}, "unknown key"),
    ],
)
def test_bad_ava_profiles_are_refused(ava: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        ServerProfile.from_dict({"ava": ava})


def test_ava_must_be_a_table() -> None:
    with pytest.raises(ProfileError, match="table"):
        ServerProfile.from_dict({"ava": 3})


def test_webhooks_without_a_secret_use_webhook_secret() -> None:
    profile = ServerProfile.from_dict(
        {"ava": {"webhook_secret": "shh", "webhooks": [{"url": "http://a"}]}}
    )
    assert [(h.url, h.secret) for h in profile.ava.webhooks] == [("http://a", "shh")]
    extended = with_ava_webhooks(profile, ["http://b"])
    assert [(h.url, h.secret) for h in extended.ava.webhooks][-1] == ("http://b", "shh")
    with pytest.raises(ValueError, match="http"):
        with_ava_webhooks(profile, ["b"])


def test_command_line_and_banner() -> None:
    args = parse_args(["--ava-webhook", "http://a/h", "--ava-webhook", "http://b/h"])
    assert args.ava_webhook == ["http://a/h", "http://b/h"]
    profile = with_ava_webhooks(ServerProfile.load(), args.ava_webhook)
    text = banner("http://127.0.0.1:1", profile, None)
    assert "ava: http://127.0.0.1:1/ava" in text
    assert SECRET in text and "wkr_acme_complete" in text and "webhook -> http://b/h" in text


def test_server_profiles_load_with_ava_sections() -> None:
    for name in ("dev.toml", "ci.toml"):
        profile = ServerProfile.load(FIXTURES / "server" / name)
        assert profile.ava.seed == FIXTURES / "seed" / "ava.toml"


def test_reference_profile_matches_the_seed_world() -> None:
    reference = tomllib.loads((FIXTURES / "reference.toml").read_text())["ava"]
    seed = tomllib.loads((FIXTURES / "seed" / "ava.toml").read_text())
    ci = ServerProfile.load(FIXTURES / "server" / "ci.toml").ava
    tenants = {t["id"]: t for t in seed["tenants"]}
    workers = {w["id"]: w["tenant"] for w in seed["workers"]}
    assert reference["secret"] == seed["auth"]["internal_secret"]
    assert reference["webhooks"]["secret"] == ci.webhook_secret
    for name, who in reference["identities"].items():
        assert who["tenant_id"] in tenants, name
    main = reference["identities"]["main"]["tenant_id"]
    for name, entry in reference["workers"].items():
        assert workers[entry["id"]] == main, name
    assert workers[reference["other_worker_id"]] == reference["identities"]["other"]["tenant_id"]
    queue = reference["queue"]
    queue_tenant = reference["identities"][queue["identity"]]["tenant_id"]
    assert workers[queue["block"]] == workers[queue["quick"]] == queue_tenant
    assert tenants[queue_tenant]["max_concurrent"] == queue["max_concurrent"]
    assert main != queue_tenant, "the priority check needs a tenant of its own"
