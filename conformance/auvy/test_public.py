"""Public share-token routes: the scoping matrix, and what each route does with a valid token.

Matrix: every public route x every credential case -> the documented outcome. Rejections must
carry the envelope and leak nothing (checked on the body, not only the status).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conformance.checks import (
    ConformanceFailure,
    auvy_error_envelope,
    body_of,
    no_leak,
    status_is,
)
from conformance.clients.auvy import (
    BLOCKED_STATUSES,
    NOT_FOUND_CODES,
    REFUSED,
    STARTED,
    Answers,
    AuvyClient,
    refused,
    revoked_answers,
)
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}
AUDIO = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)).decode()


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


@dataclass
class Public:
    """The main receptor of the profile and a way to call any public route with any credential."""

    auvy: AuvyClient
    profile: TargetProfile

    @property
    def workspace(self) -> str:
        return str(self.profile.need("auvy.public.workspace"))

    def receptor(self, name: str = "main") -> dict[str, Any]:
        value: dict[str, Any] = self.profile.need(f"auvy.public.receptors.{name}")
        return value

    def execute(
        self, token: str | None = None, body: Any = None, jwt: str | None = None
    ) -> httpx.Response:
        main = self.receptor()
        return self.auvy.public(
            "executePublicReceptor",
            "POST",
            f"/v1/public/receptors/{self.workspace}/{main['slug']}/execute",
            token=token if token is not None else main["token"],
            json_body=body if body is not None else {"message": "hello"},
            jwt=jwt,
        )

    def started(self, jwt: str | None = None) -> dict[str, Any]:
        """A job started through the main receptor with its valid token."""
        response = self.execute(jwt=jwt)
        status_is(response, STARTED)
        body: dict[str, Any] = body_of(response)
        if not isinstance(body, dict) or not isinstance(body.get("job_id"), str):
            raise ConformanceFailure("a public execute answered no job_id", repr(body))
        return body


def trace_of(started: dict[str, Any]) -> str:
    """The trace a public execute started. The document shows no answer for execute; the
    reference names the trace (`trace_id`), and a target that does not leaves the trace checks
    nothing to work on."""
    trace = started.get("trace_id")
    if not isinstance(trace, str) or not trace:
        pytest.skip("the target's public execute answer names no trace_id")
    return trace


@pytest.fixture
def public(auvy: AuvyClient, profile: TargetProfile) -> Public:
    return Public(auvy, profile)


# --- the matrix ---------------------------------------------------------------------------------

Route = Callable[[Public, str | None, str | None], httpx.Response]


def _resolve(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    slug = p.receptor()["slug"]
    return p.auvy.public(
        "resolvePublicReceptor",
        "GET",
        f"/v1/public/receptors/{p.workspace}/{slug}",
        token=token,
        jwt=jwt,
    )


def _resolve_by_id(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    rid = p.receptor()["id"]
    return p.auvy.public(
        "resolvePublicReceptorById",
        "GET",
        f"/v1/public/receptors/by-id/{rid}",
        token=token,
        jwt=jwt,
    )


def _execute(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    slug = p.receptor()["slug"]
    return p.auvy.public(
        "executePublicReceptor",
        "POST",
        f"/v1/public/receptors/{p.workspace}/{slug}/execute",
        token=token,
        jwt=jwt,
        json_body={"message": "hello"},
    )


def _execute_in_body(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    slug = p.receptor()["slug"]
    body: dict[str, Any] = {"message": "hello"}
    if token is not None:
        body["share_token"] = token
    return p.auvy.public(
        "executePublicReceptor",
        "POST",
        f"/v1/public/receptors/{p.workspace}/{slug}/execute",
        token=None,
        jwt=jwt,
        json_body=body,
    )


def _execute_by_id(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    rid = p.receptor()["id"]
    return p.auvy.public(
        "executePublicReceptorById",
        "POST",
        f"/v1/public/receptors/by-id/{rid}/execute",
        token=token,
        jwt=jwt,
        json_body={"message": "hello"},
    )


def _transcribe(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    slug = p.receptor()["slug"]
    return p.auvy.public(
        "transcribePublicReceptor",
        "POST",
        f"/v1/public/receptors/{p.workspace}/{slug}/transcribe",
        token=token,
        jwt=jwt,
        json_body={"audio_base64": AUDIO, "mime_type": "audio/webm"},
    )


def _trace(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    started = p.started()
    return p.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{trace_of(started)}",
        token=token,
        jwt=jwt,
        params={"workspace": p.workspace, "receptor": p.receptor()["slug"]},
    )


def _stream(p: Public, token: str | None, jwt: str | None) -> httpx.Response:
    job_id = p.started()["job_id"]
    with p.auvy.open_public_stream(job_id, token, jwt=jwt) as stream:
        # A refused stream arrives read; an accepted one is dropped after its headers.
        return stream.response


ROUTES: dict[str, Route] = {
    "resolve": _resolve,
    "resolve-by-id": _resolve_by_id,
    "execute": _execute,
    "execute-token-in-body": _execute_in_body,
    "execute-by-id": _execute_by_id,
    "transcribe": _transcribe,
    "trace": _trace,
    "stream": _stream,
}


@dataclass(frozen=True)
class Case:
    token: Callable[[Public], str | None]
    jwt: Callable[[Public], str | None]
    # Every answer the documents allow (empty: success), given the profile.
    answers: Callable[[Public], Answers]
    # The reference server's own answer where `answers` allows several (a decision).
    reference: tuple[int, frozenset[str]] | None = None


def _token(name: str, key: str = "token") -> Callable[[Public], str]:
    return lambda p: str(p.profile.need(f"auvy.public.receptors.{name}.{key}"))


NONE: Callable[[Public], None] = lambda p: None  # noqa: E731
AUTH_REQUIRED: Answers = {401: {"AUTH_REQUIRED"}}
FORBIDDEN = (403, frozenset({"FORBIDDEN"}))
SUCCESS: Answers = {}


def _always(answers: Answers) -> Callable[[Public], Answers]:
    return lambda p: answers


def _revoked(p: Public) -> Answers:
    return revoked_answers(p.profile)


CASES: dict[str, tuple[Case, str]] = {
    "no-token": (Case(NONE, NONE, _always(AUTH_REQUIRED)), "auvy.public.token.required"),
    "malformed-token": (
        Case(lambda p: "!!not-a-share-token!!", NONE, _always(AUTH_REQUIRED)),
        "auvy.public.token.required",
    ),
    "other-receptor-same-workspace": (
        Case(_token("no_files"), NONE, _always(REFUSED), FORBIDDEN),
        "auvy.public.token.scoped",
    ),
    "same-slug-other-workspace": (
        Case(_token("other_workspace_same_slug"), NONE, _always(REFUSED), FORBIDDEN),
        "auvy.public.token.scoped",
    ),
    "revoked-token": (
        Case(_token("main", "revoked_token"), NONE, _revoked, (401, frozenset({"AUTH_REQUIRED"}))),
        "auvy.public.token.revocable",
    ),
    "rotated-out-token": (
        Case(_token("main", "rotated_token"), NONE, _revoked, (401, frozenset({"AUTH_REQUIRED"}))),
        "auvy.public.token.revocable",
    ),
    "valid-jwt-other-receptor-token": (
        Case(
            _token("no_files"),
            lambda p: str(p.profile.need("auvy.public.user_jwt")),
            _always(REFUSED),
            FORBIDDEN,
        ),
        "auvy.public.jwt.never-widens",
    ),
    "valid-jwt-no-token": (
        Case(
            NONE,
            lambda p: str(p.profile.need("auvy.public.user_jwt")),
            _always(AUTH_REQUIRED),
        ),
        "auvy.public.jwt.never-widens",
    ),
    "valid": (Case(_token("main"), NONE, _always(SUCCESS)), "auvy.public.token.query-or-body"),
}

# The stream route names only a job: in the reference another receptor's token finds no such job
# of its receptor, a 404 (indistinguishable from a missing job), not a receptor mismatch.
JOB_NOT_THEIRS = (404, NOT_FOUND_CODES)
REFERENCE_OVERRIDES: dict[tuple[str, str], tuple[int, frozenset[str]]] = {
    ("stream", "other-receptor-same-workspace"): JOB_NOT_THEIRS,
    ("stream", "same-slug-other-workspace"): JOB_NOT_THEIRS,
    ("stream", "valid-jwt-other-receptor-token"): JOB_NOT_THEIRS,
}

MATRIX = [
    pytest.param(route, case, marks=req(requirement), id=f"{route}-{case}")
    for route in ROUTES
    for case, (_, requirement) in CASES.items()
]


def _leaks_nothing(public: Public, response: httpx.Response, token: str | None) -> None:
    main = public.receptor()
    # A refusal names nothing of what it protects: not the receptor, not its token.
    no_leak(response, main["token"], str(main.get("id", "")), "Acme Support")
    if token:
        no_leak(response, token)


@pytest.mark.parametrize("route,case", MATRIX)
def test_scoping_matrix(public: Public, route: str, case: str) -> None:
    spec = CASES[case][0]
    token, jwt = spec.token(public), spec.jwt(public)
    answers = spec.answers(public)
    response = ROUTES[route](public, token, jwt)
    if not answers:
        status_is(response, STARTED if route.startswith(("execute", "transcribe")) else 200)
        return
    refused(response, answers)
    _leaks_nothing(public, response, token)


# Where the documents allow several refusals, the reference gives one; checked separately.
REFERENCE_MATRIX = [
    pytest.param(route, case, id=f"{route}-{case}")
    for route in ROUTES
    for case, (spec, _) in CASES.items()
    if spec.reference is not None
]


@req("auvy.public.refusal-codes")
@pytest.mark.parametrize("route,case", REFERENCE_MATRIX)
def test_scoping_matrix_reference_codes(public: Public, route: str, case: str) -> None:
    spec = CASES[case][0]
    assert spec.reference is not None
    status, codes = REFERENCE_OVERRIDES.get((route, case), spec.reference)
    token, jwt = spec.token(public), spec.jwt(public)
    auvy_error_envelope(ROUTES[route](public, token, jwt), status, codes)


@req("auvy.public.token.revocable")
def test_revoked_and_rotated_tokens_are_refused_the_same_way_everywhere(public: Public) -> None:
    """FACTS.md leaves 401 or 403 open for a revoked token, and asks that it be consistent: a
    rotated-out token is a revoked one, and every route answers alike."""
    answers = revoked_answers(public.profile)
    seen: dict[str, int] = {}
    for name in ("revoked_token", "rotated_token"):
        token = str(public.profile.need(f"auvy.public.receptors.main.{name}"))
        for route, call in ROUTES.items():
            seen[f"{route} with the {name.replace('_', ' ')}"] = refused(
                call(public, token, None), answers
            )
    if len(set(seen.values())) != 1:
        raise ConformanceFailure("revoked tokens are refused inconsistently", repr(seen))


# --- an invalid user JWT -----------------------------------------------------------------------


@req("auvy.public.jwt.invalid-refused")
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_expired_jwt_with_a_valid_token_is_401(public: Public, route: str) -> None:
    jwt = str(public.profile.need("auvy.public.expired_jwt"))
    response = ROUTES[route](public, public.receptor()["token"], jwt)
    auvy_error_envelope(response, 401, "AUTH_REQUIRED")
    _leaks_nothing(public, response, None)


@req("auvy.public.jwt.attribution")
def test_an_expired_jwt_is_refused_or_ignored_never_trusted(public: Public) -> None:
    """The JWT is optional and only attributes: a server may refuse one it cannot verify (401)
    or go on without it, but must not attribute the trace to the user an expired JWT names."""
    jwt = str(public.profile.need("auvy.public.expired_jwt"))
    user = str(public.profile.need("auvy.public.user_id"))
    response = public.execute(jwt=jwt)
    if response.status_code == 401:
        auvy_error_envelope(response, 401, "AUTH_REQUIRED")
        return
    status_is(response, STARTED)
    trace = _public_trace(public, trace_of(body_of(response)))
    no_leak(trace, user)


# --- what a valid token does --------------------------------------------------------------------


def _public_trace(public: Public, trace_id: str) -> httpx.Response:
    main = public.receptor()
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{trace_id}",
        token=main["token"],
        params={"workspace": public.workspace, "receptor": main["slug"]},
    )
    status_is(response, 200)
    return response


def _receptor_names(body: dict[str, Any], public: Public) -> None:
    # The shape of `receptor` is not published: what it says of the receptor must be right.
    receptor = body["receptor"]
    main = public.receptor()
    if isinstance(receptor, dict):
        for key in ("slug", "id"):
            if key in receptor:
                assert receptor[key] == main[key], f"receptor.{key} names another receptor"
    else:
        assert receptor in (main["slug"], main["id"]), f"receptor names another: {receptor!r}"


@req("auvy.public.resolve.shape", "auvy.public.resolve.share-safe")
def test_resolve_returns_share_safe_metadata(public: Public) -> None:
    response = _resolve(public, public.receptor()["token"], None)
    status_is(response, 200)
    body = body_of(response)
    assert isinstance(body, dict), body
    missing = {"receptor", "allow_files", "customization"} - set(body)
    assert not missing, f"resolve lacks {sorted(missing)}: {body}"
    _receptor_names(body, public)
    assert isinstance(body["allow_files"], bool), body["allow_files"]
    assert isinstance(body["customization"], dict), body["customization"]
    for name in ("auvy.public.receptors.main.token", "auvy.keys.main", "auvy.pathways.complete.id"):
        secret = str(public.profile.need(name))
        assert secret not in response.text, f"resolve leaks {name}"


@req("auvy.public.resolve.reference-shape")
def test_resolve_names_the_receptor_by_slug_and_id(public: Public) -> None:
    body = body_of(_resolve(public, public.receptor()["token"], None))
    main = public.receptor()
    assert body["receptor"]["slug"] == main["slug"] and body["receptor"]["id"] == main["id"], body


@req("auvy.public.by-id")
def test_by_id_routes_open_the_tokens_receptor(public: Public) -> None:
    main = public.receptor()
    response = _resolve_by_id(public, main["token"], None)
    status_is(response, 200)
    _receptor_names(body_of(response), public)
    started = _execute_by_id(public, main["token"], None)
    status_is(started, STARTED)
    job_id = body_of(started)["job_id"]
    final = public.auvy.wait_for(job_id, TERMINAL, timeout(public.profile))
    assert final["status"] == "completed", final


@req("auvy.public.by-id", "auvy.public.token.scoped")
def test_by_id_with_another_receptors_id_is_refused(public: Public) -> None:
    other = public.receptor("no_files")
    response = public.auvy.public(
        "resolvePublicReceptorById",
        "GET",
        f"/v1/public/receptors/by-id/{other['id']}",
        token=public.receptor()["token"],
    )
    refused(response, REFUSED)
    no_leak(response, public.receptor()["token"], "Acme Sales")


@req("auvy.public.execute.returns-job")
def test_execute_starts_a_job_that_runs_to_completion(public: Public) -> None:
    started = public.started()
    final = public.auvy.wait_for(started["job_id"], TERMINAL, timeout(public.profile))
    assert final["status"] == "completed", final


@req("auvy.public.execute.reference-answer")
def test_execute_answers_200_with_job_trace_and_pending(public: Public) -> None:
    response = public.execute()
    status_is(response, 200)
    body = body_of(response)
    assert body["status"] == "pending", body
    assert isinstance(body.get("trace_id"), str) and body["trace_id"], body


@req("auvy.public.execute.message-required", "auvy.errors.validation")
@pytest.mark.parametrize(
    "body",
    [{}, {"message": ""}, {"message": 7}, {"stream": True}],
    ids=["empty", "blank", "number", "no-message"],
)
def test_execute_needs_a_message(public: Public, body: dict[str, Any]) -> None:
    auvy_error_envelope(public.execute(body=body), 400, "VALIDATION_ERROR")


@req("auvy.public.execute.stream-flag")
def test_execute_stream_flag_is_boolean(public: Public) -> None:
    status_is(public.execute(body={"message": "hi", "stream": True}), STARTED)
    status_is(public.execute(body={"message": "hi", "stream": False}), STARTED)
    auvy_error_envelope(
        public.execute(body={"message": "hi", "stream": "yes"}), 400, "VALIDATION_ERROR"
    )


@req("auvy.public.jwt.attribution")
def test_execute_works_with_and_without_a_user_jwt(public: Public) -> None:
    jwt = str(public.profile.need("auvy.public.user_jwt"))
    for given in (jwt, None):
        started = public.started(jwt=given)
        final = public.auvy.wait_for(started["job_id"], TERMINAL, timeout(public.profile))
        assert final["status"] == "completed", (given is not None, final)


@req("auvy.public.trace.user-id")
def test_a_valid_jwt_attributes_the_trace(public: Public) -> None:
    jwt = public.profile.need("auvy.public.user_jwt")
    user = public.profile.need("auvy.public.user_id")
    for given, expected in ((jwt, user), (None, None)):
        started = public.started(jwt=given)
        trace = body_of(_public_trace(public, trace_of(started)))
        assert trace["user_id"] == expected, trace
        assert started["job_id"] in trace["job_ids"]


@req("auvy.public.transcribe.returns-job")
def test_public_transcribe_returns_a_job_id(public: Public) -> None:
    response = _transcribe(public, public.receptor()["token"], None)
    status_is(response, STARTED)
    job_id = body_of(response)["job_id"]
    assert public.auvy.wait_for(job_id, TERMINAL, timeout(public.profile))["status"] == "completed"


@req("auvy.public.transcribe.allow-files")
def test_receptor_without_files_refuses_transcription_and_starts_nothing(public: Public) -> None:
    no_files = public.receptor("no_files")
    # No test starts a job through this receptor, so its job list is stable under parallel runs.
    before = public.auvy.job_ids(receptor_id=no_files["id"])
    response = public.auvy.public(
        "transcribePublicReceptor",
        "POST",
        f"/v1/public/receptors/{public.workspace}/{no_files['slug']}/transcribe",
        token=no_files["token"],
        json_body={"audio_base64": AUDIO, "mime_type": "audio/webm"},
    )
    # Refusing files is documented, its error is not: not allowed (403) or an invalid request.
    refused(response, {403: {"FORBIDDEN"}, 400: {"VALIDATION_ERROR"}})
    after = public.auvy.job_ids(receptor_id=no_files["id"])
    assert after == before, f"a refused transcription started {set(after) - set(before)}"


@req("auvy.public.trace.params")
@pytest.mark.parametrize("missing", ["workspace", "receptor"])
def test_public_trace_needs_workspace_and_receptor(public: Public, missing: str) -> None:
    started, main = public.started(), public.receptor()
    params = {"workspace": public.workspace, "receptor": main["slug"]}
    del params[missing]
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{trace_of(started)}",
        token=main["token"],
        params=params,
    )
    auvy_error_envelope(response, 400, "VALIDATION_ERROR")


@req("auvy.public.trace.params", "auvy.public.token.scoped")
def test_public_trace_with_another_receptor_named_is_refused(public: Public) -> None:
    started, main = public.started(), public.receptor()
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{trace_of(started)}",
        token=main["token"],
        params={"workspace": public.workspace, "receptor": public.receptor("no_files")["slug"]},
    )
    refused(response, REFUSED)
    no_leak(response, started["job_id"], main["token"])


@req("auvy.public.trace.scoped")
def test_trace_of_another_receptor_is_refused(public: Public) -> None:
    started = public.started()
    other = public.receptor("no_files")
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{trace_of(started)}",
        token=other["token"],
        params={"workspace": public.workspace, "receptor": other["slug"]},
    )
    refused(response, REFUSED)
    no_leak(response, started["job_id"])


@req("auvy.public.refusal-codes")
def test_trace_of_another_receptor_is_404_in_the_reference(public: Public) -> None:
    started = public.started()
    other = public.receptor("no_files")
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{trace_of(started)}",
        token=other["token"],
        params={"workspace": public.workspace, "receptor": other["slug"]},
    )
    auvy_error_envelope(response, 404, NOT_FOUND_CODES)


@req("auvy.public.stream.scoped")
def test_public_stream_of_another_receptors_job_is_refused(public: Public) -> None:
    started = public.started()
    other = public.receptor("no_files")
    read = public.auvy.read_stream(started["job_id"], public_token=other["token"])
    assert not read.events, "the stream sent another receptor's events"
    refused(read.response, REFUSED)


@req("auvy.public.stream.scoped")
def test_public_stream_of_a_private_job_is_refused(public: Public) -> None:
    job_id = public.auvy.start(public.profile.need("auvy.pathways.complete.id"))
    read = public.auvy.read_stream(job_id, public_token=public.receptor()["token"])
    assert not read.events, "the public stream sent a private job's events"
    refused(read.response, REFUSED)


@req("auvy.public.stream.scoped")
def test_public_stream_of_a_job_not_of_the_named_trace_is_refused(public: Public) -> None:
    first, second = public.started(), public.started()
    read = public.auvy.read_stream(
        first["job_id"], public_token=public.receptor()["token"], trace_id=trace_of(second)
    )
    assert not read.events, "the stream ignored the trace it was given"
    refused(read.response, REFUSED)


@req("auvy.public.stream.after")
def test_public_stream_with_share_and_trace_params(public: Public) -> None:
    started, main = public.started(), public.receptor()
    read = public.auvy.read_stream(
        started["job_id"],
        public_token=main["token"],
        trace_id=trace_of(started),
        workspace=public.workspace,
        receptor=main["slug"],
    )
    assert read.status_code == 200, f"the public stream answered {read.status_code}"
    assert read.ended and read.terminal is not None, "the stream did not end with a terminal event"


@req("auvy.public.blocked-workspace")
@pytest.mark.parametrize(
    "name,code", [("trial_expired", "trial_expired"), ("cost_cap", "cost_cap")]
)
def test_blocked_workspace_receptor_cannot_execute(public: Public, name: str, code: str) -> None:
    receptor = public.receptor(name)
    path = f"/v1/public/receptors/{receptor['workspace']}/{receptor['slug']}"
    response = public.auvy.public(
        "executePublicReceptor",
        "POST",
        f"{path}/execute",
        token=receptor["token"],
        json_body={"message": "hi"},
    )
    refused(response, {status: {code} for status in BLOCKED_STATUSES})
    # Reading the public metadata still works.
    status_is(
        public.auvy.public("resolvePublicReceptor", "GET", path, token=receptor["token"]), 200
    )
