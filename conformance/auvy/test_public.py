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

from conformance.checks import auvy_error_envelope, body_of, no_leak, status_is
from conformance.clients.auvy import AuvyClient
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
        """A job (and trace) started through the main receptor with its valid token."""
        response = self.execute(jwt=jwt)
        status_is(response, 200)
        body: dict[str, Any] = body_of(response)
        return body


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
        f"/v1/public/traces/{started['trace_id']}",
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
    status: int
    codes: frozenset[str]


def _token(name: str, key: str = "token") -> Callable[[Public], str]:
    return lambda p: str(p.profile.need(f"auvy.public.receptors.{name}.{key}"))


NONE: Callable[[Public], None] = lambda p: None  # noqa: E731
CASES: dict[str, tuple[Case, str]] = {
    "no-token": (Case(NONE, NONE, 401, frozenset({"AUTH_REQUIRED"})), "auvy.public.token.required"),
    "malformed-token": (
        Case(lambda p: "!!not-a-share-token!!", NONE, 401, frozenset({"AUTH_REQUIRED"})),
        "auvy.public.token.required",
    ),
    "other-receptor-same-workspace": (
        Case(_token("no_files"), NONE, 403, frozenset({"FORBIDDEN"})),
        "auvy.public.token.scoped",
    ),
    "same-slug-other-workspace": (
        Case(_token("other_workspace_same_slug"), NONE, 403, frozenset({"FORBIDDEN"})),
        "auvy.public.token.scoped",
    ),
    "revoked-token": (
        Case(_token("main", "revoked_token"), NONE, 401, frozenset({"AUTH_REQUIRED"})),
        "auvy.public.token.revocable",
    ),
    "rotated-out-token": (
        Case(_token("main", "rotated_token"), NONE, 401, frozenset({"AUTH_REQUIRED"})),
        "auvy.public.token.revocable",
    ),
    "expired-jwt-valid-token": (
        Case(
            _token("main"),
            lambda p: str(p.profile.need("auvy.public.expired_jwt")),
            401,
            frozenset({"AUTH_REQUIRED"}),
        ),
        "auvy.public.jwt.invalid-refused",
    ),
    "valid-jwt-other-receptor-token": (
        Case(
            _token("no_files"),
            lambda p: str(p.profile.need("auvy.public.user_jwt")),
            403,
            frozenset({"FORBIDDEN"}),
        ),
        "auvy.public.jwt.never-widens",
    ),
    "valid-jwt-no-token": (
        Case(
            NONE,
            lambda p: str(p.profile.need("auvy.public.user_jwt")),
            401,
            frozenset({"AUTH_REQUIRED"}),
        ),
        "auvy.public.jwt.never-widens",
    ),
    "valid": (Case(_token("main"), NONE, 200, frozenset()), "auvy.public.token.query-or-body"),
}

# The stream route names only a job: another receptor's token finds no such job of its receptor,
# which is a 404 (indistinguishable from a missing job), not a receptor mismatch.
JOB_NOT_THEIRS = (404, frozenset({"NOT_FOUND", "RESOURCE_NOT_FOUND"}))
OVERRIDES: dict[tuple[str, str], tuple[int, frozenset[str]]] = {
    ("stream", "other-receptor-same-workspace"): JOB_NOT_THEIRS,
    ("stream", "same-slug-other-workspace"): JOB_NOT_THEIRS,
    ("stream", "valid-jwt-other-receptor-token"): JOB_NOT_THEIRS,
}

MATRIX = [
    pytest.param(route, case, marks=req(requirement), id=f"{route}-{case}")
    for route in ROUTES
    for case, (_, requirement) in CASES.items()
]


@pytest.mark.parametrize("route,case", MATRIX)
def test_scoping_matrix(public: Public, route: str, case: str) -> None:
    spec = CASES[case][0]
    token, jwt = spec.token(public), spec.jwt(public)
    status, codes = OVERRIDES.get((route, case), (spec.status, spec.codes))
    response = ROUTES[route](public, token, jwt)
    if status == 200:
        status_is(response, 200)
        return
    auvy_error_envelope(response, status, codes)
    main = public.receptor()
    # A refusal names nothing of what it protects: not the receptor, not its token.
    no_leak(response, main["token"], str(main.get("id", "")), "Acme Support")
    if token:
        no_leak(response, token)


# --- what a valid token does --------------------------------------------------------------------


@req("auvy.public.resolve.shape", "auvy.public.resolve.share-safe")
def test_resolve_returns_share_safe_metadata(public: Public) -> None:
    body = body_of(_resolve(public, public.receptor()["token"], None))
    assert set(body) >= {"receptor", "allow_files", "customization"}, body
    assert body["receptor"]["slug"] == public.receptor()["slug"]
    assert isinstance(body["allow_files"], bool) and isinstance(body["customization"], dict)
    text = str(body)
    for secret in (
        public.receptor()["token"],
        str(public.profile.get("auvy.keys.main", "")),
        str(public.profile.get("auvy.pathways.complete.id", "")),
    ):
        assert not secret or secret not in text, f"resolve leaks {secret[:8]}…"


@req("auvy.public.by-id")
def test_by_id_routes_open_the_tokens_receptor(public: Public) -> None:
    main = public.receptor()
    body = body_of(_resolve_by_id(public, main["token"], None))
    assert body["receptor"]["id"] == main["id"] and body["receptor"]["slug"] == main["slug"]
    status_is(_execute_by_id(public, main["token"], None), 200)


@req("auvy.public.by-id", "auvy.public.token.scoped")
def test_by_id_with_another_receptors_id_is_refused(public: Public) -> None:
    other = public.receptor("no_files")
    response = public.auvy.public(
        "resolvePublicReceptorById",
        "GET",
        f"/v1/public/receptors/by-id/{other['id']}",
        token=public.receptor()["token"],
    )
    auvy_error_envelope(response, 403, "FORBIDDEN")


@req("auvy.public.execute.returns-job")
def test_execute_starts_a_job_that_runs_to_completion(public: Public) -> None:
    started = public.started()
    assert started["status"] == "pending" and started["job_id"]
    final = public.auvy.wait_for(started["job_id"], TERMINAL, timeout(public.profile))
    assert final["status"] == "completed"


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
    status_is(public.execute(body={"message": "hi", "stream": True}), 200)
    status_is(public.execute(body={"message": "hi", "stream": False}), 200)
    auvy_error_envelope(
        public.execute(body={"message": "hi", "stream": "yes"}), 400, "VALIDATION_ERROR"
    )


@req("auvy.public.jwt.attribution")
def test_a_valid_jwt_attributes_the_trace(public: Public) -> None:
    jwt = public.profile.need("auvy.public.user_jwt")
    user = public.profile.need("auvy.public.user_id")
    main = public.receptor()
    for given, expected in ((jwt, user), (None, None)):
        started = public.started(jwt=given)
        trace = body_of(
            public.auvy.public(
                "getPublicTrace",
                "GET",
                f"/v1/public/traces/{started['trace_id']}",
                token=main["token"],
                params={"workspace": public.workspace, "receptor": main["slug"]},
            )
        )
        assert trace["user_id"] == expected, trace
        assert started["job_id"] in trace["job_ids"]


@req("auvy.public.transcribe.returns-job")
def test_public_transcribe_returns_a_job_id(public: Public) -> None:
    response = _transcribe(public, public.receptor()["token"], None)
    status_is(response, 200)
    job_id = body_of(response)["job_id"]
    assert public.auvy.wait_for(job_id, TERMINAL, timeout(public.profile))["status"] == "completed"


@req("auvy.public.transcribe.allow-files")
def test_receptor_without_files_refuses_transcription(public: Public) -> None:
    no_files = public.receptor("no_files")
    before = body_of(public.auvy.list_jobs(params={"limit": 1}))["total"]
    response = public.auvy.public(
        "transcribePublicReceptor",
        "POST",
        f"/v1/public/receptors/{public.workspace}/{no_files['slug']}/transcribe",
        token=no_files["token"],
        json_body={"audio_base64": AUDIO, "mime_type": "audio/webm"},
    )
    auvy_error_envelope(response, 403, "FORBIDDEN")
    assert body_of(public.auvy.list_jobs(params={"limit": 1}))["total"] >= before


@req("auvy.public.trace.params")
@pytest.mark.parametrize("missing", ["workspace", "receptor"])
def test_public_trace_needs_workspace_and_receptor(public: Public, missing: str) -> None:
    started, main = public.started(), public.receptor()
    params = {"workspace": public.workspace, "receptor": main["slug"]}
    del params[missing]
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{started['trace_id']}",
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
        f"/v1/public/traces/{started['trace_id']}",
        token=main["token"],
        params={"workspace": public.workspace, "receptor": public.receptor("no_files")["slug"]},
    )
    auvy_error_envelope(response, 403, "FORBIDDEN")


@req("auvy.public.trace.scoped")
def test_trace_of_another_receptor_is_404(public: Public) -> None:
    started = public.started()
    other = public.receptor("no_files")
    response = public.auvy.public(
        "getPublicTrace",
        "GET",
        f"/v1/public/traces/{started['trace_id']}",
        token=other["token"],
        params={"workspace": public.workspace, "receptor": other["slug"]},
    )
    auvy_error_envelope(response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})
    no_leak(response, started["job_id"])


@req("auvy.public.stream.scoped")
def test_public_stream_of_another_receptors_job_is_refused(public: Public) -> None:
    started = public.started()
    other = public.receptor("no_files")
    read = public.auvy.read_stream(started["job_id"], public_token=other["token"])
    assert not read.events, "the stream sent another receptor's events"
    auvy_error_envelope(read.response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})


@req("auvy.public.stream.scoped")
def test_public_stream_of_a_private_job_is_refused(public: Public) -> None:
    job_id = public.auvy.start(public.profile.need("auvy.pathways.complete.id"))
    read = public.auvy.read_stream(job_id, public_token=public.receptor()["token"])
    assert not read.events
    auvy_error_envelope(read.response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})


@req("auvy.public.stream.scoped")
def test_public_stream_of_a_job_not_of_the_named_trace_is_refused(public: Public) -> None:
    first, second = public.started(), public.started()
    read = public.auvy.read_stream(
        first["job_id"], public_token=public.receptor()["token"], trace_id=second["trace_id"]
    )
    assert not read.events
    auvy_error_envelope(read.response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})


@req("auvy.public.stream.after")
def test_public_stream_with_share_and_trace_params(public: Public) -> None:
    started, main = public.started(), public.receptor()
    read = public.auvy.read_stream(
        started["job_id"],
        public_token=main["token"],
        trace_id=started["trace_id"],
        workspace=public.workspace,
        receptor=main["slug"],
    )
    assert read.status_code == 200 and read.ended and read.terminal is not None


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
    auvy_error_envelope(response, 403, code)
    # Reading the public metadata still works.
    status_is(
        public.auvy.public("resolvePublicReceptor", "GET", path, token=receptor["token"]), 200
    )
