"""The property suites' helpers: depth resolution, per-test seeds, and failure rendering."""

from __future__ import annotations

import shlex

import pytest

from conformance.profile import REFERENCE_PROFILE, TargetProfile
from conformance.property.battery import battery
from conformance.property.depth import DEPTHS, DepthError, resolve_depth, test_seed
from conformance.property.fixtures import finishing_fixtures, retargets
from conformance.property.headroom import with_headroom
from conformance.property.repro import Step, render_failure, render_steps, replay_command
from conformance.property.targets import auth_headers, battery_identity
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
    assert not next(c for c in cases if c.label == "mode twice").strict


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
