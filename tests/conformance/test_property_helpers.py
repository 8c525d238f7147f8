"""The property suites' helpers: depth resolution, per-test seeds, and failure rendering."""

from __future__ import annotations

import shlex

import httpx
import pytest

from conformance.checks import ConformanceFailure
from conformance.profile import REFERENCE_PROFILE, TargetProfile
from conformance.property.battery import battery
from conformance.property.depth import (
    DEPTHS,
    DepthError,
    resolve_depth,
    settings_for,
    test_seed,
)
from conformance.property.fixtures import finishing_fixtures, retargets
from conformance.property.headroom import with_headroom
from conformance.property.machines import intervention_of
from conformance.property.repro import Step, render_failure, render_steps, replay_command
from conformance.property.targets import auth_headers, battery_identity
from conformance.property.test_bad_input import allowed_statuses, code_problem
from conformance.property.test_schemathesis import _retarget
from conformance.report import Exchange


def test_with_headroom_returns_the_result_and_lets_exceptions_through() -> None:
    assert with_headroom(lambda: 42) == 42

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        with_headroom(fails)


def test_quick_is_the_default_and_the_option_beats_the_profile() -> None:
    assert resolve_depth(None).name == "quick"
    assert resolve_depth(None, "deep").name == "deep"
    assert resolve_depth("quick", "deep").name == "quick"


@pytest.mark.parametrize("bad", ["medium", 3, ""])
def test_an_unknown_depth_is_refused_naming_the_choices(bad: object) -> None:
    with pytest.raises(DepthError, match="quick, deep"):
        resolve_depth(None, bad)


def test_deep_pushes_harder_than_quick_everywhere() -> None:
    quick, deep = DEPTHS["quick"], DEPTHS["deep"]
    for name in quick.__dataclass_fields__:
        if name != "name":
            assert getattr(deep, name) >= getattr(quick, name), name


def test_shrinking_can_be_left_out_where_every_attempt_costs_a_live_job() -> None:
    import hypothesis

    assert hypothesis.Phase.shrink in settings_for(3).phases
    assert hypothesis.Phase.shrink not in settings_for(3, shrink=False).phases
    assert hypothesis.Phase.generate in settings_for(3, shrink=False).phases


def test_a_test_seed_depends_on_the_run_seed_and_the_test_only() -> None:
    assert test_seed(7, "a::b") == test_seed(7, "a::b")
    assert test_seed(7, "a::b") != test_seed(8, "a::b")
    assert test_seed(7, "a::b") != test_seed(7, "a::c")
    assert 0 <= test_seed(123, "x") < 2**32


def _exchange(body: str = '{"job_id": "j1"}') -> Exchange:
    return Exchange(
        method="POST",
        url="http://127.0.0.1:1/auvy/v1/jobs/j1/cancel",
        request_headers={"authorization": "Bearer auvy_t…", "content-length": "2"},
        request_body="{}",
        status=200,
        response_headers={},
        response_body=body,
    )


def test_steps_render_with_a_runnable_curl_line_and_the_answer() -> None:
    text = render_steps([Step("cancel j1 (model: completed)", _exchange()), Step("model only")])
    lines = text.splitlines()
    assert lines[0] == "1. cancel j1 (model: completed)"
    curl = lines[1].removeprefix("   $ ")
    argv = shlex.split(curl)
    assert argv[:3] == ["curl", "-X", "POST"]
    assert "content-length: 2" not in argv, "curl computes Content-Length itself"
    assert argv[argv.index("--data-raw") + 1] == "{}"
    assert lines[2] == '   -> 200 {"job_id": "j1"}'
    assert lines[3] == "2. model only"


def test_long_response_bodies_are_cut() -> None:
    text = render_steps([Step("x", _exchange("y" * 1000))])
    assert text.endswith("…") and len(text.splitlines()[2]) < 400


def test_a_failure_names_requirements_sequence_and_replay() -> None:
    text = render_failure(
        "cancel of a completed job answered 200",
        ["auvy.properties.lifecycle"],
        [Step("start", _exchange()), Step("cancel", _exchange())],
        seed=42,
        nodeid="conformance/property/test_lifecycle.py::test_auvy_lifecycle",
        depth="deep",
    )
    assert "requirements: auvy.properties.lifecycle" in text
    assert "sequence (2 steps):" in text
    assert text.count("$ curl") == 2
    assert text.splitlines()[-1] == "replay: " + replay_command(
        42, "conformance/property/test_lifecycle.py::test_auvy_lifecycle", "deep"
    )
    assert "--seed 42 --depth deep" in text


def test_the_battery_covers_every_operation_with_auth_and_body_cases() -> None:
    document = {
        "security": [{"bearer": []}],
        "paths": {
            "/v1/jobs/{id}": {
                "post": {
                    "operationId": "doIt",
                    "parameters": [
                        {"name": "id", "in": "path", "schema": {"type": "string"}},
                        {"name": "mode", "in": "query", "schema": {"enum": ["a", "b"]}},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {"200": {}, "400": {}, "401": {}, "404": {}},
                }
            }
        },
    }
    cases = list(battery("auvy", document, {}))
    labels = {c.label for c in cases}
    for wanted in (
        "no credentials",
        "malformed credentials",
        "unknown mode value",
        "mode twice",
        "malformed JSON",
        "wrong content type",
        "deeply nested JSON",
        "huge body",
        "empty body",
        "body is list",
    ):
        assert wanted in labels, wanted
    assert all(c.allowed >= {400, 401, 404} for c in cases)
    assert next(c for c in cases if c.label == "huge body").allowed == {400, 401, 404, 413}
    # The path parameter is a placeholder that names nothing: every case must be refused.
    assert all(c.strict and c.refused_by_reference for c in cases)


def _list_operation(body_required: bool = False) -> dict[str, object]:
    """A list route without path parameters: only the documents decide what must be refused."""
    op: dict[str, object] = {
        "operationId": "listThings",
        "parameters": [
            {"name": "status", "in": "query", "schema": {"enum": ["a", "b"]}},
            {"name": "limit", "in": "query", "schema": {"type": "integer"}},
            {"name": "cursor", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        ],
        "responses": {"200": {}, "400": {}, "401": {}},
    }
    if body_required:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["worker_id"],
                        "properties": {
                            "worker_id": {"type": "string"},
                            "trigger": {"enum": ["manual", "event"]},
                        },
                    }
                }
            },
        }
    return {"security": [{"bearer": []}], "paths": {"/v1/things": {"post": op}}}


def test_what_the_documents_leave_open_need_only_be_refused_by_the_reference() -> None:
    cases = {c.label: c for c in battery("auvy", _list_operation(), {})}
    for label in ("unknown status value", "limit not a number", "cursor malformed"):
        assert not cases[label].strict, label
        assert cases[label].refused_by_reference, label
    for label in ("status twice", "limit control characters"):
        assert not cases[label].strict and not cases[label].refused_by_reference, label
    assert cases["no credentials"].strict and cases["malformed credentials"].strict


def test_a_bad_strait_cursor_must_be_refused_as_facts_say() -> None:
    cases = {c.label: c for c in battery("strait", _list_operation(), {})}
    assert cases["cursor malformed"].strict
    assert not cases["limit not a number"].strict


def test_a_required_body_makes_every_malformed_body_invalid() -> None:
    cases = {c.label: c for c in battery("ava", _list_operation(body_required=True), {})}
    for label in (
        "malformed JSON",
        "wrong content type",
        "deeply nested JSON",
        "huge body",
        "empty body",
        "body is list",
        "body is NoneType",
        # lacks the required worker_id
        "unknown trigger value",
        # a worker id that names nothing
        "worker_id with control characters",
    ):
        assert cases[label].strict, label


def test_other_targets_may_answer_what_the_documents_give_the_same_error() -> None:
    cases = {c.label: c for c in battery("ava", _list_operation(body_required=True), {})}
    bad = cases["malformed JSON"]
    assert allowed_statuses("ava", bad, reference=True) == {400, 401}
    assert allowed_statuses("ava", bad, reference=False) == {400, 401, 413, 415, 422}
    assert 422 not in allowed_statuses("auvy", bad, reference=False)
    assert 414 not in allowed_statuses("ava", bad, reference=False)


def test_an_error_code_must_be_the_one_the_table_gives_its_status() -> None:
    assert code_problem("auvy", 400, {"code": "VALIDATION_ERROR", "message": "x"}) is None
    assert code_problem("auvy", 400, {"code": "NOT_FOUND", "message": "x"})
    assert code_problem("ava", 422, {"error": {"code": "validation_error"}}) is None
    assert code_problem("strait", 422, {"error": {"code": "bad_request"}})
    assert code_problem("strait", 413, {"error": {"code": "too_large"}}) is None


# --- the fuzz identity: generated requests never run as the main one -------------------------


def test_generated_requests_authenticate_as_the_fuzz_identity() -> None:
    profile = TargetProfile.load(REFERENCE_PROFILE)
    auvy = auth_headers(profile, "auvy")
    assert auvy == {"Authorization": f"Bearer {profile.need('auvy.fuzz.key')}"}
    assert profile.need("auvy.keys.main") not in auvy["Authorization"]
    assert auth_headers(profile, "ava")["x-tenant-id"] == profile.need("ava.fuzz.tenant_id")
    assert profile.need("strait.fuzz.key") in auth_headers(profile, "strait")["Authorization"]
    assert finishing_fixtures(profile, "strait") == [
        profile.need("strait.fuzz.complete"),
        profile.need("strait.fuzz.fatal"),
    ]


@pytest.mark.parametrize("api", ["auvy", "ava", "strait"])
def test_without_a_fuzz_identity_they_skip_rather_than_use_the_main_one(api: str) -> None:
    data = dict(TargetProfile.load(REFERENCE_PROFILE).data)
    data[api] = {k: v for k, v in data[api].items() if k != "fuzz"}
    profile = TargetProfile(data)
    with pytest.raises(pytest.skip.Exception, match=rf"no \[{api}.fuzz\]"):
        auth_headers(profile, api)
    with pytest.raises(pytest.skip.Exception):
        finishing_fixtures(profile, api)


class _Case:
    def __init__(self, path: dict[str, object], query: dict[str, object], body: object) -> None:
        self.path_parameters = path
        self.query = query
        self.body = body


def test_documented_examples_are_retargeted_to_the_fuzz_workspace() -> None:
    profile = TargetProfile.load(REFERENCE_PROFILE)
    fuzz = retargets(profile, "auvy")
    case = _Case(
        {"workspace": "acme", "slug": "generated"},
        {"t": "shr_8Kq2xV0mZt4bN7cR1yW5pL3d"},
        {"share_token": ["not", "a", "string"], "message": "support"},
    )
    _retarget("auvy", case, fuzz)
    assert case.path_parameters == {"workspace": "fuzzlab", "slug": "generated"}
    assert case.query == {"t": profile.need("auvy.fuzz.share_token")}
    assert case.body == {"share_token": ["not", "a", "string"], "message": "support"}


# --- the battery identity: the bad-input battery's own tenant ---------------------------------


@pytest.mark.parametrize("api", ["auvy", "ava", "strait"])
def test_the_battery_authenticates_as_its_own_identity(api: str) -> None:
    profile = TargetProfile.load(REFERENCE_PROFILE)
    headers = auth_headers(profile, api, "battery")
    assert headers != auth_headers(profile, api)
    if api == "ava":
        assert headers["x-tenant-id"] == profile.need("ava.battery.tenant_id")
        assert headers["x-tenant-id"] != profile.need("ava.fuzz.tenant_id")
    else:
        assert headers == {"Authorization": f"Bearer {profile.need(f'{api}.battery.key')}"}


@pytest.mark.parametrize("api", ["auvy", "ava", "strait"])
def test_without_a_battery_identity_the_battery_skips_rather_than_use_another(api: str) -> None:
    data = dict(TargetProfile.load(REFERENCE_PROFILE).data)
    data[api] = {k: v for k, v in data[api].items() if k != "battery"}
    profile = TargetProfile(data)
    with pytest.raises(pytest.skip.Exception, match=rf"no \[{api}.battery\]: the bad-input"):
        auth_headers(profile, api, "battery")
    with pytest.raises(pytest.skip.Exception, match=rf"no \[{api}.battery\]"):
        battery_identity(profile, api)
    assert auth_headers(profile, api)  # the fuzz identity is untouched


# --- finding the intervention a waiting job asks about ----------------------------------------


class _Interventions:
    """Stands in for AuvyClient.list_interventions."""

    def __init__(self, status: int, body: object) -> None:
        self.answer = httpx.Response(status, json=body)
        self.asked: list[object] = []

    def list_interventions(self, **kw: object) -> httpx.Response:
        self.asked.append(kw.get("params"))
        return self.answer


def test_the_intervention_comes_from_waiting_for_when_it_names_one() -> None:
    client = _Interventions(500, {})
    snap = {"status": "waiting", "waitingFor": {"interventionId": "int_1"}}
    assert intervention_of(client, "job_1", snap) == "int_1"  # type: ignore[arg-type]
    assert client.asked == []


def test_otherwise_the_documented_listing_names_it() -> None:
    # FACTS.md: the shape of waitingFor is not published; GET /v1/interventions filters by job_id.
    client = _Interventions(200, {"interventions": [{"id": "int_2", "job_id": "job_1"}]})
    snap = {"status": "waiting", "waitingFor": {"kind": "approval"}}
    assert intervention_of(client, "job_1", snap) == "int_2"  # type: ignore[arg-type]
    assert client.asked == [{"job_id": "job_1", "status": "pending"}]


def test_a_waiting_job_that_names_no_intervention_fails_saying_so() -> None:
    client = _Interventions(200, {"interventions": []})
    with pytest.raises(ConformanceFailure, match="names no intervention"):
        intervention_of(client, "job_1", {"status": "waiting"})  # type: ignore[arg-type]
